"""Ground truth: the accuracy a source reaches on a target's held-out test set after transfer,
under two protocols that fit two CPU cores.

* linear probe: a new linear head on the frozen penultimate features, standardised with the
  scoring set's mean and deviation (PROBE_EPOCHS; Adam, learning rate 1e-2, batches of 128).
* fine-tune: the source's last block and the layers after it (its `tail`) and a new linear head
  are trained together for a fixed budget (FINETUNE_EPOCHS over the scoring set; Adam, learning
  rate 1e-4 for the tail and 1e-2 for the head, batches of 128; batch normalisation keeps the
  source's statistics). The head reads the tail's features through the probe's standardisation
  (the mean and deviation of the source's own features, fixed), so both protocols start from the
  same place and differ only in what they train. The frozen trunk's output on every image was
  computed once and cached, so an epoch runs the tail only.

The head is initialised and the batches ordered by the seed; every (source, target) pair runs
every seed of both protocols.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FINETUNE_EPOCHS = 5
PROBE_EPOCHS = 40
BATCH = 128


def _train(parameters, model, x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int) -> None:
    optimiser = torch.optim.Adam(parameters)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(y), generator=generator).split(BATCH):
            loss = F.cross_entropy(model(x[batch]), y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()


@torch.no_grad()
def _correct(model, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Which test rows the model classifies right (the accuracy is their mean; the analysis
    resamples them for its intervals)."""
    return (model(x).argmax(1) == y).numpy()


class _Standardise(nn.Module):
    """x ↦ (x − mean) / deviation with fixed mean and deviation."""

    def __init__(self, features: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.from_numpy(features.mean(0)))
        self.register_buffer("deviation", torch.from_numpy(features.std(0) + 1e-6))

    def forward(self, x):
        return (x - self.mean) / self.deviation


def fine_tune(source, trunk_score: np.ndarray, features_score: np.ndarray, labels: np.ndarray,
              trunk_test: np.ndarray, test_labels: np.ndarray, classes: int, seed: int,
              epochs: int = FINETUNE_EPOCHS) -> np.ndarray:
    """The test rows classified right after fine-tuning the source's tail and a new head."""
    torch.manual_seed(seed)
    tail = copy.deepcopy(source.tail)
    head = nn.Linear(source.feature_width, classes)
    model = nn.Sequential(tail, _Standardise(features_score), head)
    for module in tail.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()  # the source's statistics, not a 128-row batch's
    parameters = [{"params": tail.parameters(), "lr": 1e-4}, {"params": head.parameters(), "lr": 1e-2}]
    _train(parameters, model, torch.from_numpy(trunk_score), torch.from_numpy(labels), epochs, seed)
    model.eval()
    return _correct(model, torch.from_numpy(trunk_test), torch.from_numpy(test_labels))


def linear_probe(features_score: np.ndarray, labels: np.ndarray, features_test: np.ndarray,
                 test_labels: np.ndarray, classes: int, seed: int, epochs: int = PROBE_EPOCHS) -> np.ndarray:
    """The test rows classified right by a new linear head on the frozen, standardised features."""
    torch.manual_seed(seed)
    head = nn.Linear(features_score.shape[1], classes)
    model = nn.Sequential(_Standardise(features_score), head)
    _train([{"params": head.parameters(), "lr": 1e-2}], model, torch.from_numpy(features_score),
           torch.from_numpy(labels), epochs, seed)
    return _correct(model, torch.from_numpy(features_test), torch.from_numpy(test_labels))


def measure(source, cached: dict, target, seeds: list[int], *, finetune_epochs: int = FINETUNE_EPOCHS,
            probe_epochs: int = PROBE_EPOCHS) -> list[dict]:
    """Every seed of both protocols for one pair: rows of protocol, seed, accuracy, the test rows
    classified right (a string of 0 and 1) and seconds."""
    score, test = cached["score"], cached["test"]
    protocols = {
        "finetune": lambda seed: fine_tune(source, score["trunk"], score["features"], target.score_labels,
                                           test["trunk"], target.test_labels, target.classes, seed, finetune_epochs),
        "probe": lambda seed: linear_probe(score["features"], target.score_labels, test["features"],
                                           target.test_labels, target.classes, seed, probe_epochs)}
    rows = []
    for seed in seeds:
        for protocol, run in protocols.items():
            started = time.monotonic()
            correct = run(seed)
            rows.append({"protocol": protocol, "seed": seed, "accuracy": float(correct.mean()),
                         "correct": "".join("1" if c else "0" for c in correct),
                         "seconds": time.monotonic() - started})
    return rows
