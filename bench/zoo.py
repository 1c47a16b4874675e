"""The model-zoo publisher of `bench/run`: many small runs from one Python process, the way an
evaluation service scores a zoo of candidate models on many target data sets.

    python bench/zoo.py BROKERS PREFIX --models 30 --datasets 10 --rows 2000 --classes 100 [--closed-only]
    python bench/zoo.py BROKERS PREFIX … --features 768 --features-alone-every 2 [--floor]

Publishes models × datasets runs of `rows` × `classes` float32 softmax outputs with the
leepstream Python client (clients/python), one after the other, and prints one JSON line: the
publishing time and each run's float64 reference score (Tests/reference), to compare with what
the pipeline publishes. Every array comes from a seed of its own, so runs are reproducible.

With `--features D` every run also carries `rows` × D float32 features (clustered by label), and
every `--features-alone-every`-th run carries features alone (an encoder without a softmax head).
With `--floor` it publishes nothing: it times the runs' arithmetic alone (`arithmetic_floor`) and
prints that instead."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "clients" / "python" / "src"))
sys.path.insert(0, str(ROOT / "Tests" / "reference"))
from leep_reference import leep_scores  # noqa: E402
from leepstream import LeepProducer  # noqa: E402


def zoo_run(seed: int, rows: int, classes: int, targets: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, targets, size=rows)
    logits = rng.normal(size=(rows, classes))
    logits[np.arange(rows), (labels * 7) % classes] += 2.0
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32), labels


def zoo_features(seed: int, labels: np.ndarray, width: int, targets: int) -> np.ndarray:
    """Features clustered by label: row i = centre[y_i] + N(0, I), centres N(0, 0.3² I)."""
    rng = np.random.default_rng(seed + 1_000_003)
    centres = 0.3 * rng.normal(size=(targets, width))
    return (centres[labels] + rng.normal(size=(len(labels), width))).astype(np.float32)


def arithmetic_floor(runs: list[tuple[np.ndarray, np.ndarray]], targets: int) -> float:
    """Seconds of the arithmetic the feature metrics of every run need, in float64 NumPy (its
    bundled OpenBLAS; the caller sets the threads): per run, pass 1's Gram matrices (the centred
    scatter, and the per-class scatters — together two n × D² products), the eigendecomposition
    with vectors LogME and both H-scores share, TransRate's Y + 1 Cholesky factors (the features'
    and each class's coding rate), and SFDA's three passes — a Cholesky solve per fit, the mixed
    rows' per-class scatters (one more n × D² product) and the projections of the rows onto the
    fits (n × D × Y each). GBC's per-class variances and LEEP's passes (2,000 × 100) are left
    out: O(n·D) and O(n·Z), they are noise beside these."""
    started = time.perf_counter()
    for features, labels in runs:
        x = features.astype(np.float64)
        n, d = x.shape
        centred = x - x.mean(axis=0)
        scatter = centred.T @ centred
        classes = [c for c in range(targets) if (labels == c).any()]
        per_class = []
        for c in classes:
            rows = x[labels == c]
            rows = rows - rows.mean(axis=0)
            per_class.append(rows.T @ rows)
        np.linalg.eigh(scatter)
        identity = np.eye(d)
        for gram in [scatter] + per_class:
            np.linalg.cholesky(identity + (d / (n * 0.01)) * gram / n)
        means = np.stack([x[labels == c].mean(axis=0) for c in classes])

        def fit(within: np.ndarray) -> np.ndarray:
            factor = np.linalg.cholesky(0.9 * within + 0.1 * np.trace(within) / d * identity)
            return np.linalg.solve(factor.T, np.linalg.solve(factor, means.T))

        # SFDA's mixing pass: every row projected onto the first fit, the mixed rows' scatters.
        scores = x @ fit(sum(per_class) / n)
        mixed = x + 0.1 * scores[:, :1]
        mixed_within = np.zeros((d, d))
        for c in classes:
            rows = mixed[labels == c]
            rows = rows - rows.mean(axis=0)
            mixed_within += rows.T @ rows
        # Its scoring pass: every row projected onto the second fit.
        _ = x @ fit(mixed_within / n)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("brokers")
    parser.add_argument("prefix")
    parser.add_argument("--models", type=int, default=30)
    parser.add_argument("--datasets", type=int, default=10)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--targets", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--no-reference", action="store_true", help="skip the float64 reference scores")
    parser.add_argument("--features", type=int, default=0, help="D: features of this width beside every run's rows")
    parser.add_argument("--features-alone-every", type=int, default=0,
                        help="every k-th run carries features alone (no softmax outputs)")
    parser.add_argument("--floor", action="store_true", help="time the runs' arithmetic alone; publish nothing")
    arguments = parser.parse_args()

    runs = []
    seed = arguments.first_seed
    for model in range(arguments.models):
        for dataset in range(arguments.datasets):
            runs.append((f"model-{model}", f"dataset-{dataset}", seed))
            seed += 1
    arrays = {seed: zoo_run(seed, arguments.rows, arguments.classes, arguments.targets) for _, _, seed in runs}
    features = {seed: zoo_features(seed, arrays[seed][1], arguments.features, arguments.targets)
                for _, _, seed in runs} if arguments.features else {}
    alone = {seed for index, (_, _, seed) in enumerate(runs)
             if arguments.features_alone_every and index % arguments.features_alone_every == 0}
    if arguments.floor:
        floor = arithmetic_floor([(features[seed], arrays[seed][1]) for _, _, seed in runs], arguments.targets)
        print(json.dumps({"floor_s": floor, "runs": len(runs)}))
        return
    ids = {f"{model}@{dataset}@{seed}": seed for model, dataset, seed in runs}
    references = {} if arguments.no_reference else {
        run: leep_scores(arrays[seed][0].astype(np.float64), arrays[seed][1], target_classes=arguments.targets)["leep"]
        for run, seed in ids.items() if seed not in alone}
    producer = LeepProducer(arguments.brokers, topic_prefix=arguments.prefix)
    started = time.perf_counter()
    for model, dataset, seed in runs:
        probabilities, labels = arrays[seed]
        producer.publish(model, dataset, None if seed in alone else probabilities, labels, run=f"{model}@{dataset}@{seed}",
                         target_classes=arguments.targets, features=features.get(seed))
    published = time.perf_counter() - started
    # Wall-clock time, so the caller can measure from the end of publishing to the last score.
    published_at = time.time()
    producer.close()
    print(json.dumps({"published_s": published, "published_at": published_at, "runs": len(runs),
                      "bytes": sum(a[0].nbytes for seed, a in arrays.items() if seed not in alone)
                      + sum(f.nbytes for f in features.values()), "reference": references}))


if __name__ == "__main__":
    main()
