"""The two measured transfer accuracies of a (source, target) pair, and a from-scratch baseline.

Both train on the target's training split and report accuracy on its held-out test split:

* retrained head: the source is frozen; a multinomial logistic regression (scikit-learn's
  LogisticRegression, L2, C = 1, on standardised features) learns the target's classes from
  the source's last hidden layer.
* fine-tuning: every hidden layer starts from the source, a new output layer is initialised,
  and the whole network is trained with Adam (learning rate 1e-3, batch FINETUNE_BATCH) for the
  variant's fixed number of epochs. No early stopping, no tuning per pair. Repeated with
  FINETUNE_SEEDS seeds (new head and batch order); the accuracy is their mean.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlp import MLP, train
from tasks import FINETUNE_BATCH, FINETUNE_SEEDS, SCRATCH_HIDDEN, TargetData, rng_for


def head_accuracy(source: MLP, target: TargetData) -> float:
    """Test accuracy of a logistic regression on the frozen source's last hidden layer."""
    head = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=10_000))
    head.fit(source.hidden(target.x_train), target.y_train)
    return float(head.score(source.hidden(target.x_test), target.y_test))


def fit_for_epochs(model: MLP, target: TargetData, epochs: int, rng: np.random.Generator) -> float:
    """Trains model on the target's training split for the given epochs; its test accuracy."""
    steps = epochs * max(1, len(target.y_train) // FINETUNE_BATCH)
    train(model, target.x_train, target.y_train, steps=steps, batch_size=FINETUNE_BATCH, rng=rng)
    return model.accuracy(target.x_test, target.y_test)


def finetune_accuracy(source: MLP, target: TargetData, epochs: int, rng: np.random.Generator) -> float:
    """Test accuracy after fine-tuning every layer of the source with a new output layer."""
    return fit_for_epochs(source.with_new_head(target.task.classes, rng), target, epochs, rng)


def scratch_accuracy(hidden: tuple[int, ...], target: TargetData, epochs: int,
                     rng: np.random.Generator) -> float:
    """Test accuracy of a randomly initialised network trained like fine-tuning: the baseline
    that tells whether transfer helps at all."""
    sizes = [target.x_train.shape[1], *hidden, target.task.classes]
    return fit_for_epochs(MLP.initialised(sizes, rng), target, epochs, rng)


def measure_target(variant: str, models: dict[str, MLP], target: TargetData, epochs: int
                   ) -> tuple[dict, list[dict]]:
    """A target's description and from-scratch baseline, and each source's accuracies on it
    (one row per source: head, fine-tuning per seed). A function of its arguments alone, so
    targets can be measured in parallel processes."""
    name = target.task.name
    scratch = [scratch_accuracy(SCRATCH_HIDDEN, target, epochs, rng_for(variant, "scratch", name, seed))
               for seed in range(FINETUNE_SEEDS)]
    row = {"variant": variant, "target": name, "task": target.task.description,
           "classes": target.task.classes, "n_train": len(target.y_train), "n_test": len(target.y_test),
           "scratch_accuracy": float(np.mean(scratch))}
    pairs = []
    for source, model in models.items():
        runs = [finetune_accuracy(model, target, epochs, rng_for(variant, "finetune", source, name, seed))
                for seed in range(FINETUNE_SEEDS)]
        pairs.append({"source": source, "target": name, "head_accuracy": head_accuracy(model, target),
                      "finetune_accuracy": float(np.mean(runs)),
                      **{f"finetune_seed{seed}": accuracy for seed, accuracy in enumerate(runs)}})
    return row, pairs
