#!/usr/bin/env python3
"""A batched inference loop that streams its softmax outputs to leepstream for scoring.

The "pretrained source model" is a small NumPy classifier over Z source classes (nearest
prototypes, a stand-in for a network's forward pass); the "target data set" has Y classes. Each
batch of 256 samples goes through the model, and its softmax is handed to `run.add(...)`: the
client cuts fixed-size chunks as batches arrive, publishes them, and publishes the manifest
when the loop ends. Then the script waits for the run's score on `<prefix>scores` with the
client's `ScoreSubscriber`.

    ops/broker start                                    # a local broker on 127.0.0.1:9092
    .build/release/leep worker &  .build/release/leep aggregate &
    python3 examples/python-inference/infer_and_publish.py
    .build/release/leep scores                           # the leaderboard

With torch the loop is the same: `run.add(torch.softmax(net(images), dim=1), labels)`; the
client accepts tensors (and anything with `__array__`) as they are.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

# Use the client from this repository without installing it (`pip install clients/python` also works).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "clients" / "python" / "src"))
from leepstream import LeepProducer, RunTimeout, ScoreSubscriber  # noqa: E402


class PrototypeModel:
    """A frozen "source model": logits are −½‖x − p_z‖² / T for Z prototypes p_z. Some prototypes
    sit near the target classes' centres, so the model transfers, but not perfectly."""

    def __init__(self, centres: np.ndarray, source_classes: int, relatedness: float, seed: int):
        rng = np.random.default_rng(seed)
        target_classes, dims = centres.shape
        related = min(source_classes, 3 * target_classes)
        anchors = centres[np.arange(related) % target_classes]
        prototypes = rng.normal(scale=2.0, size=(source_classes, dims))
        prototypes[:related] = relatedness * anchors + (1 - relatedness) * prototypes[:related]
        self.prototypes = prototypes.astype(np.float32)
        self.temperature = 4.0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        distances = ((x[:, None, :] - self.prototypes[None, :, :]) ** 2).sum(axis=2)
        return -0.5 * distances / self.temperature


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=1, keepdims=True)


def target_dataset(samples: int, target_classes: int, dims: int, batch_size: int, seed: int, noise: float = 2.5):
    """The class centres, and a loader that yields (inputs, labels) batches, as a DataLoader would."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(target_classes, dims))

    def loader():
        batch_rng = np.random.default_rng(seed + 1)
        for start in range(0, samples, batch_size):
            size = min(batch_size, samples - start)
            labels = batch_rng.integers(0, target_classes, size=size)
            inputs = centres[labels] + noise * batch_rng.normal(size=(size, dims))
            yield inputs.astype(np.float32), labels

    return centres, loader


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--brokers", default="127.0.0.1:9092", help="bootstrap brokers (default %(default)s)")
    parser.add_argument("--topic-prefix", default="leep.", help="topic prefix (default %(default)s)")
    parser.add_argument("--model", default="prototypes-z100", help="the source model's name")
    parser.add_argument("--dataset", default="blobs-y10", help="the target data set's name")
    parser.add_argument("--run", default=None, help="run id (default: model@dataset@random)")
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--source-classes", type=int, default=100, help="Z")
    parser.add_argument("--target-classes", type=int, default=10, help="Y")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--relatedness", type=float, default=0.5, help="0 (unrelated) to 1 (aligned)")
    parser.add_argument("--eep-accuracy", action="store_true", help="also compute EEP accuracy")
    parser.add_argument("--wait", type=float, default=120, help="seconds to wait for the score (0: don't)")
    parser.add_argument("--save", type=pathlib.Path, default=None,
                        help="also write predictions.npy and labels.npy here, to check with `leep score`")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    centres, loader = target_dataset(args.samples, args.target_classes, 16, args.batch_size, args.seed)
    model = PrototypeModel(centres, args.source_classes, args.relatedness, args.seed + 2)
    producer = LeepProducer(args.brokers, topic_prefix=args.topic_prefix)
    kept: list[tuple[np.ndarray, np.ndarray]] = []

    started = time.monotonic()
    with producer.run(model=args.model, dataset=args.dataset, run=args.run, target_classes=args.target_classes,
                      eep_accuracy=args.eep_accuracy) as run:
        for inputs, labels in loader():
            probabilities = softmax(model(inputs))  # float32, one row per sample
            run.add(probabilities, labels)
            if args.save:
                kept.append((probabilities, labels))
    summary = run.summary
    assert summary is not None
    print(f"run {summary.run}: {summary.rows} rows in {summary.chunks} chunks "
          f"({summary.chunk_bytes / 1e6:.1f} MB) published in {time.monotonic() - started:.2f} s")

    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        np.save(args.save / "predictions.npy", np.concatenate([p for p, _ in kept]))
        np.save(args.save / "labels.npy", np.concatenate([y for _, y in kept]))
        print(f"saved: leep score --predictions {args.save / 'predictions.npy'} --labels {args.save / 'labels.npy'}")

    print(f"read the leaderboard: leep scores --brokers {args.brokers} --topic-prefix {args.topic_prefix}")
    if args.wait <= 0:
        return 0
    try:
        record = ScoreSubscriber(args.brokers, topic_prefix=args.topic_prefix).wait(summary.run, timeout=args.wait)
    except RunTimeout as timeout:
        print(f"{timeout}: are `leep worker` and `leep aggregate` running with --topic-prefix {args.topic_prefix}?",
              file=sys.stderr)
        return 1
    if record.status != "final":
        print(f"run {record.status}: {record.reason or ''}", file=sys.stderr)
        return 1
    accuracy = f", EEP accuracy {record.eep_accuracy:.4f}" if record.eep_accuracy is not None else ""
    print(f"LEEP {record.leep:.6f} (bracket [{record.leep_lower:.6f}, {record.leep_upper:.6f}]), NCE {record.nce:.6f}"
          f"{accuracy} (n = {record.n}, Z = {record.source_classes}, Y = {record.target_classes})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
