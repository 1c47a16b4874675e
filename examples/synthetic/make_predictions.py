"""Writes synthetic softmax outputs of a few "source models" on one target data set.

Each model sees the target's classes through a different amount of noise, so their LEEP scores
rank them the way their transfer accuracy would. Deterministic (fixed seeds); numpy only.

    python3 make_predictions.py OUT_DIR
writes OUT_DIR/labels.npy and OUT_DIR/<model>.npy for each model.
"""

import pathlib
import sys

import numpy as np

SAMPLES = 4000
TARGET_CLASSES = 10
# model name → (source classes Z, how strongly its logits follow the target class)
MODELS = {
    "wide-strong": (1000, 4.0),
    "wide-weak": (1000, 1.5),
    "narrow-strong": (100, 3.0),
    "unrelated": (300, 0.0),
}


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=1, keepdims=True)


def main(out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2020)
    labels = rng.integers(0, TARGET_CLASSES, size=SAMPLES)
    np.save(out / "labels.npy", labels.astype(np.int64))
    for index, (name, (source_classes, signal)) in enumerate(MODELS.items()):
        model_rng = np.random.default_rng(100 + index)
        # Each target class lights up a few source classes of its own.
        affinity = model_rng.normal(size=(TARGET_CLASSES, source_classes))
        logits = signal * affinity[labels] + model_rng.normal(size=(SAMPLES, source_classes))
        np.save(out / f"{name}.npy", softmax(logits).astype(np.float32))


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))
