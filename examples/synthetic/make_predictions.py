"""Writes synthetic softmax outputs of a few "source models" on a few target data sets.

Each model sees each data set's classes through a different amount of noise, so LEEP ranks them
the way their transfer accuracy would. Deterministic (fixed seeds); numpy only.

    python3 make_predictions.py OUT_DIR
writes OUT_DIR/<dataset>/labels.npy and OUT_DIR/<dataset>/<model>.npy.
"""

import pathlib
import sys

import numpy as np

# data set → (samples, target classes)
DATASETS = {"pets-like": (4000, 10), "birds-like": (3000, 25)}
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
    for dataset_index, (dataset, (samples, target_classes)) in enumerate(DATASETS.items()):
        directory = out / dataset
        directory.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(2020 + dataset_index)
        labels = rng.integers(0, target_classes, size=samples)
        np.save(directory / "labels.npy", labels.astype(np.int64))
        for model_index, (name, (source_classes, signal)) in enumerate(MODELS.items()):
            model_rng = np.random.default_rng(100 * dataset_index + model_index)
            # Each target class lights up a few source classes of its own.
            affinity = model_rng.normal(size=(target_classes, source_classes))
            logits = signal * affinity[labels] + model_rng.normal(size=(samples, source_classes))
            np.save(directory / f"{name}.npy", softmax(logits).astype(np.float32))


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))
