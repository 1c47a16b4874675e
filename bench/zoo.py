"""The model-zoo publisher of `bench/run`: many small runs from one Python process, the way an
evaluation service scores a zoo of candidate models on many target data sets.

    python bench/zoo.py BROKERS PREFIX --models 30 --datasets 10 --rows 2000 --classes 100 [--closed-only]

Publishes models × datasets runs of `rows` × `classes` float32 softmax outputs with the
leepstream Python client (clients/python), one after the other, and prints one JSON line: the
publishing time and each run's float64 reference score (Tests/reference), to compare with what
the pipeline publishes. Every array comes from a seed of its own, so runs are reproducible."""

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
    arguments = parser.parse_args()

    runs = []
    seed = arguments.first_seed
    for model in range(arguments.models):
        for dataset in range(arguments.datasets):
            runs.append((f"model-{model}", f"dataset-{dataset}", seed))
            seed += 1
    arrays = {seed: zoo_run(seed, arguments.rows, arguments.classes, arguments.targets) for _, _, seed in runs}
    ids = {f"{model}@{dataset}@{seed}": seed for model, dataset, seed in runs}
    references = {} if arguments.no_reference else {
        run: leep_scores(arrays[seed][0].astype(np.float64), arrays[seed][1], target_classes=arguments.targets)["leep"]
        for run, seed in ids.items()}
    producer = LeepProducer(arguments.brokers, topic_prefix=arguments.prefix)
    started = time.perf_counter()
    for model, dataset, seed in runs:
        probabilities, labels = arrays[seed]
        producer.publish(model, dataset, probabilities, labels, run=f"{model}@{dataset}@{seed}", target_classes=arguments.targets)
    published = time.perf_counter() - started
    # Wall-clock time, so the caller can measure from the end of publishing to the last score.
    published_at = time.time()
    producer.close()
    print(json.dumps({"published_s": published, "published_at": published_at, "runs": len(runs),
                      "bytes": sum(a[0].nbytes for a in arrays.values()), "reference": references}))


if __name__ == "__main__":
    main()
