"""The transfer study of leepstream: do its LEEP scores predict real transfer accuracy?

    python study.py [--quick] [STAGE ...]        (examples/transfer-study/run sets it all up)

Stages, in order (all of them by default):
  prepare   build the data, train the source classifiers, write each source's softmax outputs and
            last-hidden-layer features on each target's training split (and the target labels)
            as .npy, and the quickstart's subset of the predictions
  score     score every pair with the leepstream pipeline (local broker, 2 workers, aggregator):
            LEEP, NCE and EEP accuracy from the predictions; LogME, the H-scores, GBC, TransRate
            and SFDA from the features; and every pair again from its features alone (no
            softmax outputs, as an encoder without a head), checked to give the same feature
            scores
  transfer  measure each pair's transfer accuracy on the target's test split: retrained head and
            full fine-tuning; and each target's from-scratch baseline
  analyse   correlations, tables, figures
  recover   (only when named; instead of transfer) rebuild the measured accuracies from the
            committed results/pairs.csv and targets.csv, to redo the scores without training

Generated data lives in .deps/study/ (with --quick: .deps/study-quick/, where a quick run also
puts its tables and figures, leaving the committed ones alone).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import json
import os
import pathlib
import shutil
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

import analysis
import pipeline
import tasks
from mlp import MLP, softmax, train
from tasks import FINETUNE_SEEDS, TargetData, Variant
from transfer import measure_target

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
STUDY_PORT = int(os.environ.get("LEEP_STUDY_PORT", "19392"))
# The targets whose predictions the quickstart streams (every MNIST-1D source on each).
QUICKSTART_TARGETS = ("sub-38", "mod3-0to8", "sub-01234", "sub-01234567")
QUICK_DIVISOR = 10  # --quick: a tenth of the training steps and epochs


@dataclasses.dataclass(frozen=True)
class Paths:
    """Where a run writes: a full run commits its results, figures and quickstart files; a quick
    run keeps everything under its work directory."""

    work: pathlib.Path        # models, predictions, features, scores, accuracies, logs
    results: pathlib.Path     # pairs.csv, sources.csv, targets.csv, tables.md
    figures: pathlib.Path     # study-*.png
    quickstart: pathlib.Path  # the quickstart's prediction files

    @classmethod
    def for_run(cls, quick: bool) -> Paths:
        if quick:
            work = ROOT / ".deps" / "study-quick"
            return cls(work, work / "results", work / "figures", work / "quickstart")
        return cls(ROOT / ".deps" / "study", HERE / "results", ROOT / "docs", HERE / "quickstart")


class Study:
    """The stages, sharing the data they build (each set once per process)."""

    def __init__(self, paths: Paths, quick: bool):
        self.paths = paths
        divisor = QUICK_DIVISOR if quick else 1
        self.variants = [dataclasses.replace(v, source_steps=v.source_steps // divisor,
                                             finetune_epochs=max(1, v.finetune_epochs // divisor))
                         for v in tasks.VARIANTS]

    # Data -------------------------------------------------------------------------------------

    @functools.cache
    def source_data(self, variant: str) -> tasks.Split:
        if variant == "mnist1d":
            return tasks.mnist1d_set(tasks.SOURCE_SEED, tasks.MNIST1D_SOURCE_SAMPLES)
        return tasks.mnist_digits_set()

    @functools.cache
    def targets(self, variant: str) -> list[TargetData]:
        if variant == "mnist1d":
            return tasks.mnist1d_targets(tasks.mnist1d_set(tasks.TARGET_SEED, tasks.MNIST1D_TARGET_SAMPLES))
        return tasks.digits_targets(*tasks.sklearn_digits_set())

    def model_path(self, variant: Variant, source: tasks.Source) -> pathlib.Path:
        return self.paths.work / "sources" / variant.name / f"{source.name}.npz"

    def prediction_dir(self, target: str) -> pathlib.Path:
        return self.paths.work / "predictions" / target

    def feature_dir(self, target: str) -> pathlib.Path:
        """features/<target>/<source>.npy mirrors predictions/<target>/<source>.npy (a tree of its
        own, so the prediction folders the quickstart copies and streams hold predictions only)."""
        return self.paths.work / "features" / target

    # Stages -----------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Trains the sources, writes the prediction and feature files and the quickstart's copy of
        some of the predictions."""
        sources = []
        for variant in self.variants:
            data = self.source_data(variant.name)
            models = {}
            for source in variant.sources:
                started = time.monotonic()
                x_train, y_train, x_test, y_test = tasks.source_training_data(source, data, variant.name)
                model = MLP.initialised([x_train.shape[1], *source.hidden, source.task.classes],
                                        tasks.rng_for(variant.name, "source init", source.name))
                train(model, x_train, y_train, steps=variant.source_steps, batch_size=tasks.SOURCE_BATCH,
                      rng=tasks.rng_for(variant.name, "source training", source.name))
                self.model_path(variant, source).parent.mkdir(parents=True, exist_ok=True)
                model.save(self.model_path(variant, source))
                models[source.name] = model
                accuracy = model.accuracy(x_test, y_test)
                sources.append({"variant": variant.name, "source": source.name,
                                "task": source.description, "hidden": "×".join(map(str, source.hidden)),
                                "classes": source.task.classes, "train_samples": len(y_train),
                                "test_accuracy": accuracy})
                print(f"  {variant.name} source {source.name}: test accuracy {accuracy:.3f} on its own "
                      f"task ({time.monotonic() - started:.1f} s)", flush=True)
            for target in self.targets(variant.name):
                directory = self.prediction_dir(target.task.name)
                features = self.feature_dir(target.task.name)
                directory.mkdir(parents=True, exist_ok=True)
                features.mkdir(parents=True, exist_ok=True)
                np.save(directory / "labels.npy", target.y_train.astype(np.int64))
                for name, model in models.items():
                    # One forward pass: the last hidden layer (what the retrained head learns
                    # from) and the softmax of the logits it feeds.
                    *_, hidden, logits = model.activations(target.x_train)
                    np.save(directory / f"{name}.npy", softmax(logits).astype(np.float32))
                    np.save(features / f"{name}.npy", hidden.astype(np.float32))
        write_json(self.paths.work / "sources.json", sources)
        self.paths.quickstart.mkdir(parents=True, exist_ok=True)
        for directory in self.paths.quickstart.iterdir():
            if directory.is_dir():
                shutil.rmtree(directory)
        for name in QUICKSTART_TARGETS:
            shutil.copytree(self.prediction_dir(name), self.paths.quickstart / name)
        print(f"  wrote predictions to {self.paths.work / 'predictions'}, features to "
              f"{self.paths.work / 'features'} and the quickstart's "
              f"{len(QUICKSTART_TARGETS)} targets to {self.paths.quickstart}", flush=True)

    def pairs(self) -> list[pipeline.Pair]:
        return [pipeline.Pair(source.name, target.name, self.prediction_dir(target.name) / f"{source.name}.npy",
                              self.prediction_dir(target.name) / "labels.npy",
                              self.feature_dir(target.name) / f"{source.name}.npy")
                for variant in self.variants for target in variant.targets for source in variant.sources]

    def score(self) -> None:
        """Scores every pair through the pipeline, once with its softmax outputs and features and
        once with its features alone (an encoder without a head); keeps the score records."""
        leep = pathlib.Path(os.environ.get("LEEP_BIN", ROOT / ".build" / "release" / "leep"))
        pairs = self.pairs()
        alone = [pair.features_only() for pair in pairs]
        scores = pipeline.score_pairs(pairs + alone, leep=leep, root=ROOT, logs=self.paths.work / "logs",
                                      port=STUDY_PORT)
        pipeline.cross_check(pairs, scores, leep)
        pipeline.cross_check(alone, scores, leep)
        summary = pipeline.features_only_check(pairs, scores)
        write_json(self.paths.work / "scores.json", [scores[(p.model, p.dataset)] for p in pairs])
        write_json(self.paths.work / "scores-features-only.json",
                   {"check": summary, "records": [scores[(p.model, p.dataset)] for p in alone]})

    def transfer(self) -> None:
        """Measures every pair's transfer accuracies and every target's from-scratch baseline,
        targets in parallel (one process a core; each result depends only on its inputs)."""
        jobs = []
        with ProcessPoolExecutor(os.cpu_count()) as pool:
            for variant in self.variants:
                models = {s.name: MLP.load(self.model_path(variant, s)) for s in variant.sources}
                for target in self.targets(variant.name):
                    jobs.append((variant.name, target.task.name, pool.submit(
                        measure_target, variant.name, models, target, variant.finetune_epochs)))
            targets, pairs = [], []
            for variant, name, job in jobs:
                row, rows = job.result()
                targets.append(row)
                pairs += rows
                print(f"  {variant} target {name}: {len(rows)} sources measured", flush=True)
        write_json(self.paths.work / "transfer.json", {"pairs": pairs, "targets": targets})

    def recover(self) -> None:
        """Instead of `transfer`: rebuilds transfer.json from the committed results (pairs.csv and
        targets.csv), so that the scores can be redone and analysed without training again.

        Every accuracy is a count of correct test samples over the test split's size (a mean of
        FINETUNE_SEEDS such counts for fine-tuning and from scratch). The CSVs keep 8 significant
        digits (4 decimals for the from-scratch accuracy), which pins each count down; the exact
        fractions are rebuilt as transfer.py computes them, and each is checked to print as the
        committed value."""
        pairs = read_csv(self.paths.results / "pairs.csv")
        targets = read_csv(self.paths.results / "targets.csv")

        def exact(value: float, n_test: int, printed: str) -> float:
            result = round(value * n_test) / n_test
            if f"{result:{printed}}" != f"{value:{printed}}":
                raise RuntimeError(f"{value} is not a count over {n_test} test samples")
            return result

        def mean(value: float, n_test: int, printed: str) -> float:
            total = round(value * n_test * FINETUNE_SEEDS)
            # Any split of the total into seeds gives the same mean up to rounding; transfer.py
            # averages per-seed fractions, so only the total matters to the printed digits.
            result = total / (n_test * FINETUNE_SEEDS)
            if f"{result:{printed}}" != f"{value:{printed}}":
                raise RuntimeError(f"{value} is not a mean of {FINETUNE_SEEDS} counts over {n_test}")
            return result

        rows = []
        for row in pairs:
            n_test = int(row["n_test"])
            seeds = [exact(float(row[f"finetune_seed{seed}"]), n_test, ".8g") for seed in range(FINETUNE_SEEDS)]
            finetune = float(np.mean(seeds))
            if f"{finetune:.8g}" != f"{float(row['finetune_accuracy']):.8g}":
                raise RuntimeError(f"{row['source']} on {row['target']}: the seeds' mean is not finetune_accuracy")
            rows.append({"source": row["source"], "target": row["target"],
                         "head_accuracy": exact(float(row["head_accuracy"]), n_test, ".8g"),
                         "finetune_accuracy": finetune,
                         **{f"finetune_seed{seed}": value for seed, value in enumerate(seeds)}})
        described = [{"variant": t["variant"], "target": t["target"], "task": t["task"],
                      "classes": int(t["classes"]), "n_train": int(t["n_train"]), "n_test": int(t["n_test"]),
                      "scratch_accuracy": mean(float(t["scratch_accuracy"]), int(t["n_test"]), ".4f")}
                     for t in targets]
        write_json(self.paths.work / "transfer.json", {"pairs": rows, "targets": described})
        print(f"  rebuilt {self.paths.work / 'transfer.json'} from {len(rows)} pairs and "
              f"{len(described)} targets of {self.paths.results}", flush=True)

    def analyse(self) -> None:
        """Correlations, tables, figures and the quickstart's README."""
        analysis.run(self.variants, self.paths, QUICKSTART_TARGETS)


def read_csv(path: pathlib.Path) -> list[dict[str, str]]:
    """A committed CSV's rows, as strings."""
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def write_json(path: pathlib.Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"1/{QUICK_DIVISOR} of the training, outputs under .deps/study-quick only")
    stages = ("prepare", "score", "transfer", "recover", "analyse")
    parser.add_argument("stages", nargs="*", metavar="STAGE",
                        help=f"any of {', '.join(stages)} (default: all but recover)")
    args = parser.parse_args()
    if unknown := set(args.stages) - set(stages):
        parser.error(f"unknown stage {', '.join(sorted(unknown))}; the stages are {', '.join(stages)}")
    # A SIGTERM unwinds like Ctrl-C, so the pipeline's processes are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    study = Study(Paths.for_run(args.quick), args.quick)
    for stage in stages:
        if stage in args.stages or (not args.stages and stage != "recover"):
            started = time.monotonic()
            print(f"[{stage}]", flush=True)
            getattr(study, stage)()
            print(f"[{stage}] done in {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
