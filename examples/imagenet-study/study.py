"""The ImageNet-source study's heavy stages (docs/study.md, part II), run by `run` in the venv that
sees Debian's torch:

  extract   every source's forward pass over every target's scoring and test rows (softmax
            outputs, penultimate features, the trunk's output for fine-tuning), the files the
            pipeline scores, and the ground truth: both transfer protocols, every seed
  score     every pair through the leepstream pipeline (a local broker, 2 workers, an aggregator;
            examples/transfer-study/pipeline.py): runs with softmax outputs and features, and the
            same features alone, as an encoder without a head would publish them

`analyse.py` (the study venv: SciPy, pandas, Matplotlib) turns the two stages' JSON into tables
and figures. `--tiny` runs the same code on a few images per target, one seed and one epoch, for CI.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import pathlib
import sys
import time

import numpy as np
import torch

import sources as source_models
import targets as target_sets
import transfer

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent / "transfer-study"))
import pipeline  # noqa: E402  (stdlib only; shared with the MNIST-1D study)

SEEDS = [0, 1, 2]


def log(message: str) -> None:
    print(message, flush=True)


def _version(package: str | None) -> str | None:
    return importlib.metadata.version(package) if package else None


def extract(work: pathlib.Path, tiny: bool) -> None:
    """Forward passes, the files to score, and the transfer accuracies, into work/extract.json."""
    started = time.monotonic()
    sizes = {"score_rows": 24, "test_rows": 16} if tiny else {}
    loaded = []
    for spec in target_sets.SPECS:
        target = target_sets.load(spec, **sizes)
        loaded.append(target)
        (work / "labels").mkdir(parents=True, exist_ok=True)
        np.save(work / "labels" / f"{target.name}.npy", target.score_labels.astype(np.int32))
        log(f"  target {target.name}: {len(target.score_labels)} scoring + {len(target.test_labels)} test rows, "
            f"{target.classes} classes, {target.score_images.shape[1]}×{target.score_images.shape[2]} px "
            f"({spec.package} {_version(spec.package)})")
    seeds = SEEDS[:1] if tiny else SEEDS
    epochs = {"finetune_epochs": 1, "probe_epochs": 1} if tiny else {}
    report = {"tiny": tiny, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "input_size": source_models.INPUT_SIZE, "seeds": seeds,
              "finetune_epochs": epochs.get("finetune_epochs", transfer.FINETUNE_EPOCHS),
              "probe_epochs": epochs.get("probe_epochs", transfer.PROBE_EPOCHS),
              "targets": [], "sources": [], "transfer": [], "forward": []}
    for target in loaded:
        report["targets"].append({
            "name": target.name, "package": target.spec.package, "version": _version(target.spec.package),
            "description": target.spec.description, "checksums": target.checksums, "classes": target.classes,
            "score_rows": len(target.score_labels), "test_rows": len(target.test_labels)})
    for spec in source_models.SPECS:
        built = time.monotonic()
        source = source_models.build(spec, scratch_epochs=1 if tiny else 2, scratch_rows=256 if tiny else None, log=log)
        report["sources"].append({
            "name": spec.name, "kind": spec.kind, "package": spec.package, "version": _version(spec.package),
            "architecture": spec.architecture, "weights_sha256": source.checksum, "parameters": source.parameters_count,
            "imagenet_top1": spec.imagenet_top1, "feature_width": source.feature_width,
            "source_classes": source.head.out_features, "input_side": source.side,
            "build_seconds": time.monotonic() - built})
        for target in loaded:
            forward_started = time.monotonic()
            cached = {"score": source.forward_pass(target.score_images), "test": source.forward_pass(target.test_images)}
            forward_seconds = time.monotonic() - forward_started
            images = len(target.score_labels) + len(target.test_labels)
            report["forward"].append({"source": spec.name, "target": target.name, "images": images,
                                      "seconds": forward_seconds})
            for kind, key in (("predictions", "softmax"), ("features", "features")):
                (work / kind / target.name).mkdir(parents=True, exist_ok=True)
                np.save(work / kind / target.name / f"{spec.name}.npy", cached["score"][key])
            rows = transfer.measure(source, cached, target, seeds, **epochs)
            report["transfer"] += [{"source": spec.name, "target": target.name, **row} for row in rows]
            summary = ", ".join(f"{protocol} {np.mean([r['accuracy'] for r in rows if r['protocol'] == protocol]):.3f}"
                                for protocol in ("finetune", "probe"))
            log(f"  {spec.name} on {target.name}: forward {images / forward_seconds:.0f} images/s; "
                f"test accuracy {summary} over {len(seeds)} seed(s) "
                f"({sum(r['seconds'] for r in rows):.0f} s; {time.monotonic() - started:.0f} s so far)")
    report["seconds"] = time.monotonic() - started
    (work / "extract.json").write_text(json.dumps(report, indent=1))
    log(f"extract: {len(report['transfer'])} transfer runs in {report['seconds']:.0f} s")


def score(work: pathlib.Path, leep: pathlib.Path, port: int) -> None:
    """Every pair, with softmax outputs and as features alone, through the pipeline: one source
    at a time, each on a fresh broker. The in-memory broker keeps every record it is sent, and a
    run of 1,280-wide features sends statistics of Y·D² float64 in each partial (TransRate's
    per-class scatters: 131 MB at Y = 10); all 40 runs on one broker grew it past 12 GB."""
    started = time.monotonic()
    report = json.loads((work / "extract.json").read_text())
    records, pairs, largest, features_alone = {}, [], 0.0, []
    for source in report["sources"]:
        group = [pipeline.Pair(source["name"], t["name"], work / "predictions" / t["name"] / f"{source['name']}.npy",
                               work / "labels" / f"{t['name']}.npy", work / "features" / t["name"] / f"{source['name']}.npy")
                 for t in report["targets"]]
        alone = [pair.features_only() for pair in group]
        log(f"  {source['name']}: {len(group)} targets, with softmax outputs and as features alone")
        scored = pipeline.score_pairs(group + alone, leep=leep, root=ROOT, logs=work / "logs" / source["name"], port=port)
        largest = max(largest, pipeline.cross_check(group, scored, leep), pipeline.cross_check(alone, scored, leep))
        features_alone.append(pipeline.features_only_check(group, scored))
        records |= scored
        pairs += group + alone
    out = {"records": [records[(p.model, p.dataset)] for p in pairs], "cross_check_largest_relative": largest,
           "features_only": {key: sum(summary[key] for summary in features_alone)
                             for key in ("runs", "values", "identical")}
                            | {"largest_relative": max(summary["largest_relative"] for summary in features_alone)},
           "seconds": time.monotonic() - started}
    (work / "scores.json").write_text(json.dumps(out, indent=1))
    log(f"score: {len(out['records'])} runs scored by the pipeline in {out['seconds']:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stages", nargs="*", default=["extract", "score"], choices=["extract", "score"])
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--work", type=pathlib.Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("LEEP_STUDY_THREADS", "2")))
    leep = pathlib.Path(os.environ.get("LEEP_BIN", ROOT / ".build" / "release" / "leep"))
    args.work.mkdir(parents=True, exist_ok=True)
    for stage in args.stages:
        log(f"== {stage} ==")
        if stage == "extract":
            extract(args.work, args.tiny)
        else:
            score(args.work, leep, int(os.environ.get("LEEP_STUDY_PORT", "19492")))


if __name__ == "__main__":
    main()
