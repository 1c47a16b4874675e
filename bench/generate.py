"""Synthetic predictions for the benchmark: Dirichlet softmax rows, labels that follow the
argmax (70 %) or are drawn at random (30 %). Deterministic; written in slices, so memory stays
far below the file size."""

import pathlib

import numpy as np

CASES = {
    # name: (n, Z, Y)
    "imagenet1k-200k": (200_000, 1_000, 100),
    "tall-2m": (2_000_000, 10, 10),
    "imagenet21k-20k": (20_000, 21_843, 200),
}


def generate(directory: pathlib.Path, name: str, shape: tuple[int, int, int] | None = None
             ) -> tuple[pathlib.Path, pathlib.Path]:
    """The predictions and labels of case `name`: n × Z × Y from CASES, or `shape` for a case of
    its own (bench/scaling.py; the name must then tell the shapes apart, as files are reused)."""
    n, z, y = shape or CASES[name]
    predictions = directory / f"{name}.predictions.npy"
    labels_path = directory / f"{name}.labels.npy"
    if predictions.exists() and labels_path.exists():
        return predictions, labels_path
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    out = np.lib.format.open_memmap(predictions.with_suffix(".tmp.npy"), mode="w+", dtype=np.float32, shape=(n, z))
    labels = np.empty(n, dtype=np.int64)
    step = max(1, 20_000_000 // z)
    for first in range(0, n, step):
        rows = min(step, n - first)
        theta = rng.gamma(0.1, size=(rows, z))
        theta /= theta.sum(axis=1, keepdims=True)
        out[first:first + rows] = theta
        follow = rng.random(rows) < 0.7
        labels[first:first + rows] = np.where(follow, theta.argmax(axis=1) % y, rng.integers(0, y, size=rows))
    out.flush()
    del out
    predictions.with_suffix(".tmp.npy").rename(predictions)
    np.save(labels_path, labels)
    return predictions, labels_path


#: The feature-metrics case (issue 13): n × D float32 penultimate-layer features, Y classes.
FEATURE_CASE = ("features-50k-2048", 50_000, 2_048, 10)


def generate_features(directory: pathlib.Path, case: tuple[str, int, int, int] = FEATURE_CASE
                      ) -> tuple[pathlib.Path, pathlib.Path]:
    """Clustered features: row i = centre[y_i] + N(0, I), centres N(0, 0.3² I), labels uniform over
    Y classes (every class used). float32, written in slices; deterministic. `case` is (name, n,
    D, Y), FEATURE_CASE unless given (bench/scaling.py sweeps D)."""
    name, n, d, y = case
    features = directory / f"{name}.features.npy"
    labels_path = directory / f"{name}.labels.npy"
    if features.exists() and labels_path.exists():
        return features, labels_path
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(13)
    centres = 0.3 * rng.normal(size=(y, d))
    labels = rng.integers(0, y, size=n)
    labels[:y] = np.arange(y)
    out = np.lib.format.open_memmap(features.with_suffix(".tmp.npy"), mode="w+", dtype=np.float32, shape=(n, d))
    step = 5_000
    for first in range(0, n, step):
        rows = min(step, n - first)
        out[first:first + rows] = centres[labels[first:first + rows]] + rng.normal(size=(rows, d))
    out.flush()
    del out
    features.with_suffix(".tmp.npy").rename(features)
    np.save(labels_path, labels)
    return features, labels_path
