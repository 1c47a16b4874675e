"""The ImageNet-source study's comparison: how well each score, and the model-size baseline,
ranks the sources by the transfer accuracy they reach.

Reads work/extract.json (sources, targets, every transfer run with the test rows it classified
right) and work/scores.json (the pipeline's final records) and writes results/ (committed after
the full run): sources.csv, targets.csv, transfer_runs.csv, pairs.csv, tables.md, timings.json,
and the figure docs/imagenet-leep-vs-accuracy.png. No score is computed here: every score is the
pipeline's (the runs with softmax outputs for LEEP, NCE and the bracket; the runs of features
alone must agree with them on the feature scores, which `study.py score` checked).

What is computed, for each score and baseline and each protocol's accuracy (mean over seeds):
* per target (ranking the sources on one target, the use LEEP is for): weighted τ, Pearson r,
  Spearman ρ (analysis.coefficients of the MNIST-1D study: scipy's weightedtau defaults), the
  top-1 hit and the regret; mean over targets, with a 95 % bootstrap interval of the mean
  weighted τ (BOOTSTRAP replicates; each replicate resamples every pair's test rows and picks
  one seed of it, so the interval carries the ground truth's noise; the scores are fixed);
* per source across targets (the paper's view) and pooled over every pair;
* the fidelity check of Singh, Hess and Vanschoren (ICLR 2026): over every two sources on a
  target, does the gap in score predict the gap in accuracy? The share of such pairs whose
  gaps agree in sign, and the Pearson r of the gaps with each target's scores standardised;
* two source sets: all five sources, and the three ImageNet classifiers alone (4.7–6.1 M
  parameters: similar sizes, where size cannot decide by itself).
Baselines: the parameter count (all sources), ImageNet top-1 (ImageNet sources only).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np
import pandas as pd
from scipy import stats

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent / "transfer-study"))
import analysis  # noqa: E402  (the MNIST-1D study's statistics and formatting)
import figures  # noqa: E402

SCORES = {"leep": "LEEP", "nce": "NCE", "logme": "LogME", "hscore": "H-score",
          "hscore_shrinkage": "shrinkage H-score", "gbc_diagonal": "GBC (diagonal)",
          "transrate": "TransRate", "sfda": "SFDA"}
BASELINES = {"parameters": "size: parameter count", "imagenet_top1": "size: ImageNet top-1"}
PROTOCOLS = {"finetune_accuracy": "fine-tune last block + head", "head_accuracy": "linear probe"}
BOOTSTRAP = 1000
SOURCE_SETS = {"all five sources": None, "the three ImageNet classifiers": "imagenet"}


def load(work: pathlib.Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    extract = json.loads((work / "extract.json").read_text())
    scores = json.loads((work / "scores.json").read_text())
    sources = pd.DataFrame(extract["sources"])
    # Only the ImageNet classifiers load a weights file (the first full run recorded the scratch
    # control's training file here).
    sources.loc[sources["kind"] != "imagenet", "weights_sha256"] = None
    targets = pd.DataFrame(extract["targets"])
    runs = pd.DataFrame(extract["transfer"])
    records = {(r["model"], r["dataset"]): r for r in scores["records"]}
    rows = []
    for (source, target), group in runs.groupby(["source", "target"], sort=False):
        record = records[(source, target)]
        row = {"source": source, "target": target}
        for protocol, column in (("finetune", "finetune_accuracy"), ("probe", "head_accuracy")):
            accuracies = group[group["protocol"] == protocol]["accuracy"]
            row[column], row[column.replace("accuracy", "sd")] = accuracies.mean(), accuracies.std(ddof=1)
        for key in ("leep", "leep_lower", "leep_upper", *SCORES):
            value = record.get(key)
            row[key] = np.nan if value is None else value
        rows.append(row)
    pairs = pd.DataFrame(rows).merge(sources[["name", "kind", "parameters", "imagenet_top1"]],
                                     left_on="source", right_on="name").drop(columns="name")
    return sources, targets, runs, pairs, {"extract": extract, "scores": scores}


def _ranking(pairs: pd.DataFrame, key: str, accuracy: str) -> dict[str, float]:
    """Mean over targets of the per-target coefficients, the top-1 hit rate and the regret."""
    per_target = [analysis.coefficients(group[key], group[accuracy]) | dict(zip(
        ("top-1", "regret"), analysis.choice(group, key, accuracy))) for _, group in pairs.groupby("target")]
    return {name: np.nanmean([t[name] for t in per_target]) if any(~np.isnan([t[name] for t in per_target]))
            else np.nan for name in per_target[0]}


def _resampled_accuracies(pairs: pd.DataFrame, runs: pd.DataFrame, accuracy: str, rng) -> np.ndarray:
    """BOOTSTRAP × pairs: each pair's accuracy recomputed on its target's test rows resampled with
    replacement (the same rows for every source on a target), on one of its seeds at random."""
    protocol = "finetune" if accuracy == "finetune_accuracy" else "probe"
    correct = {pair: np.array([[c == "1" for c in s] for s in group["correct"]])
               for pair, group in runs[runs["protocol"] == protocol].groupby(["source", "target"])}
    replicates = np.empty((BOOTSTRAP, len(pairs)))
    for target, group in pairs.groupby("target"):
        rows = len(correct[(group["source"].iloc[0], target)][0])
        picks = rng.integers(0, rows, (BOOTSTRAP, rows))
        for position, source in zip((pairs.index.get_loc(i) for i in group.index), group["source"]):
            seeds = correct[(source, target)]
            chosen = seeds[rng.integers(len(seeds), size=BOOTSTRAP)]  # BOOTSTRAP × rows
            replicates[:, position] = np.take_along_axis(chosen, picks, axis=1).mean(axis=1)
    return replicates


def _bootstrap(pairs: pd.DataFrame, replicates: np.ndarray, key: str) -> tuple[float, float]:
    """95 % interval of the mean per-target weighted τ over the resampled accuracies."""
    groups = [(analysis.tied(group[key]), [pairs.index.get_loc(i) for i in group.index])
              for _, group in pairs.groupby("target")]
    taus = []
    for replicate in replicates:
        values = [stats.weightedtau(score[~np.isnan(score)], analysis.tied(replicate[positions])[~np.isnan(score)]).statistic
                  for score, positions in groups if np.sum(~np.isnan(score)) >= 3 and np.ptp(score[~np.isnan(score)]) > 0]
        taus.append(np.nanmean(values) if values else np.nan)
    if np.all(np.isnan(taus)):
        return np.nan, np.nan
    return tuple(np.nanpercentile(taus, [2.5, 97.5]))


def _fidelity(pairs: pd.DataFrame, key: str, accuracy: str) -> tuple[float, float]:
    """Over every two sources on a target: the share whose score gap and accuracy gap have the
    same sign, and the Pearson r of the gaps (scores standardised per target)."""
    agree, gaps = [], []
    for _, group in pairs.groupby("target"):
        score, acc = analysis.defined(group[key], group[accuracy])
        if len(score) < 2 or np.ptp(score) == 0:
            continue
        score = score / np.abs(score).max()  # GBC's 1e-280s would underflow when squared
        z = (score - score.mean()) / score.std()
        for i in range(len(score)):
            for j in range(i + 1, len(score)):
                if acc[i] != acc[j]:
                    agree.append(np.sign(z[i] - z[j]) == np.sign(acc[i] - acc[j]))
                    gaps.append((z[i] - z[j], acc[i] - acc[j]) if acc[i] > acc[j] else (z[j] - z[i], acc[j] - acc[i]))
    if len(gaps) < 3:
        return np.nan, np.nan
    gaps = np.array(gaps)
    return float(np.mean(agree)), float(np.corrcoef(gaps[:, 0], gaps[:, 1])[0, 1])


def ranking_table(pairs: pd.DataFrame, runs: pd.DataFrame, accuracy: str, kind: str | None, rng) -> str:
    subset = pairs if kind is None else pairs[pairs["kind"] == kind]
    keys = {**SCORES, "parameters": BASELINES["parameters"]}
    if kind == "imagenet":
        keys["imagenet_top1"] = BASELINES["imagenet_top1"]
    replicates = _resampled_accuracies(subset, runs, accuracy, rng)
    rows = []
    for key, label in keys.items():
        per_target = _ranking(subset, key, accuracy)
        low, high = _bootstrap(subset, replicates, key)
        pooled = analysis.coefficients(subset[key], subset[accuracy])
        per_source = [analysis.coefficients(g[key], g[accuracy])["Pearson r"] for _, g in subset.groupby("source")]
        agree, gap_r = _fidelity(subset, key, accuracy)
        rows.append([label, per_target["weighted τ"], f"[{low:+.2f}, {high:+.2f}]", per_target["Pearson r"],
                     per_target["Spearman ρ"], f"{per_target['top-1']:.2f}", f"{per_target['regret']:.3f}",
                     analysis.mean_sd(per_source), pooled["weighted τ"], pooled["Spearman ρ"],
                     "n/a" if np.isnan(agree) else f"{agree:.2f}", gap_r])
    return analysis.markdown(
        ["ranks by", "per target: weighted τ", "95 % interval", "Pearson r", "Spearman ρ", "top-1 hit",
         "regret", "per source (Pearson r across targets)", "pooled weighted τ", "pooled Spearman ρ",
         "fidelity: gap signs agree", "fidelity: gap r"], rows)


def tables(sources, targets, pairs, runs, rng) -> str:
    out = ["## Sources\n", analysis.markdown(
        ["source", "kind", "package", "weights sha256", "parameters", "ImageNet top-1 %", "feature width",
         "source classes"],
        [[s["name"], s["kind"], f"{s['package']}=={s['version']}" if pd.notna(s["package"]) else "—",
          s["weights_sha256"][:16] if pd.notna(s["weights_sha256"]) else "—", f"{s['parameters']:,}",
          "—" if pd.isna(s["imagenet_top1"]) else f"{s['imagenet_top1']:.1f}", s["feature_width"],
          s["source_classes"]] for _, s in sources.iterrows()])]
    out += ["\n## Targets\n", analysis.markdown(
        ["target", "package", "file sha256", "classes", "scoring rows", "test rows"],
        [[t["name"], f"{t['package']}=={t['version']}",
          "<br>".join(f"{path.split('/')[-1]} {digest[:16]}" for path, digest in t["checksums"].items()),
          t["classes"], t["score_rows"], t["test_rows"]] for _, t in targets.iterrows()])]
    out += ["\n## Transfer accuracy (test split; mean ± sd over seeds)\n", analysis.markdown(
        ["source", *targets["name"]],
        [[source, *[f"{r['finetune_accuracy']:.3f} ± {r['finetune_sd']:.3f} / {r['head_accuracy']:.3f} ± "
                    f"{r['head_sd']:.3f}" for _, r in group.iterrows()]]
         for source, group in pairs.groupby("source", sort=False)])]
    out.append("\nEach cell: fine-tune last block + head / linear probe.\n")
    out += ["\n## Scores (the pipeline's records)\n", analysis.markdown(
        ["source", "target", "LEEP", "bracket after pass 1", "NCE", "LogME", "H-score", "shrinkage H", "GBC diag",
         "TransRate", "SFDA"],
        [[r["source"], r["target"], f"{r['leep']:.4f}", f"[{r['leep_lower']:.4f}, {r['leep_upper']:.4f}]",
          *[("null" if pd.isna(r[k]) else f"{r[k]:.4g}") for k in
            ("nce", "logme", "hscore", "hscore_shrinkage", "gbc_diagonal", "transrate", "sfda")]]
         for _, r in pairs.iterrows()])]
    for accuracy, protocol in PROTOCOLS.items():
        for title, kind in SOURCE_SETS.items():
            out += [f"\n## Ranking {title} by {protocol} accuracy\n", ranking_table(pairs, runs, accuracy, kind, rng)]
    return "".join(out)


def figure(pairs: pd.DataFrame, path: pathlib.Path) -> None:
    """The paper's figure for these models: LEEP against the fine-tune accuracy, a panel a
    target (a column of LEEP per target, NaN elsewhere, which the scatter leaves out)."""
    panels, columns = [], pairs.copy()
    for target, group in pairs.groupby("target", sort=False):
        columns[f"leep:{target}"] = pairs["leep"].where(pairs["target"] == target)
        c = analysis.coefficients(group["leep"], group["finetune_accuracy"])
        panels.append(figures.Panel(f"leep:{target}", "LEEP", "finetune_accuracy", target,
                                    f"weighted τ {analysis.signed(c['weighted τ'])}\n"
                                    f"Pearson r {analysis.signed(c['Pearson r'])}"))
    figures.scatter(columns, path, "LEEP of ImageNet sources and controls against the accuracy after fine-tuning "
                    "the last block and a new head", panels, columns=2,
                    accuracy_label="fine-tune accuracy (target test split)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--work", type=pathlib.Path, required=True)
    args = parser.parse_args()
    print("== analyse ==", flush=True)
    sources, targets, runs, pairs, raw = load(args.work)
    results = args.work / "results" if args.tiny else HERE / "results"
    figure_path = results / "leep-vs-accuracy.png" if args.tiny else ROOT / "docs" / "imagenet-leep-vs-accuracy.png"
    results.mkdir(parents=True, exist_ok=True)
    sources.to_csv(results / "sources.csv", index=False)
    targets.drop(columns="checksums").assign(checksums=[json.dumps(c) for c in targets["checksums"]]).to_csv(
        results / "targets.csv", index=False)
    runs.to_csv(results / "transfer_runs.csv", index=False)
    pairs.to_csv(results / "pairs.csv", index=False)
    (results / "tables.md").write_text(tables(sources, targets, pairs, runs, np.random.default_rng(0)))
    timings = {"extract_seconds": raw["extract"]["seconds"], "score_seconds": raw["scores"]["seconds"],
               "forward": raw["extract"]["forward"], "torch": raw["extract"]["torch"],
               "threads": raw["extract"]["threads"], "features_only": raw["scores"]["features_only"],
               "cross_check_largest_relative": raw["scores"]["cross_check_largest_relative"]}
    (results / "timings.json").write_text(json.dumps(timings, indent=1))
    figure(pairs, figure_path)
    print(f"  wrote {results}/ (tables.md, pairs.csv, …) and {figure_path}", flush=True)


if __name__ == "__main__":
    main()
