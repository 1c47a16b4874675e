#!/usr/bin/env python3
"""How honest is the estimate of LEEP while pass 1 streams (docs/transferability.md, section 10)?

For every (source, target) pair of the transfer study (`examples/transfer-study/run prepare`
writes `.deps/study/predictions/<target>/<source>.npy` and `labels.npy`), and for ORDERS random
orders of the target's rows: at 10 %, 25 % and 50 % of the rows, the estimate the aggregator
publishes in its streaming records — the mean of log Σ_z θ_sz P̂(y_s|z) over the sampled rows
seen so far, P̂ the conditional of the joint of the rows seen so far (projected to the run's size
when it is known), and its 95 % interval, which carries the sample's noise and the conditional's
(the delta method, Student's t; `LEEPEstimate`), made once ESTIMATE_AFTER_ROWS rows are merged —
is computed here in float64 NumPy, with the worker's sample: each row sampled with probability RATE (the worker takes ⌈rows × RATE⌉ of each
chunk by a hash of the row, a uniform choice when the rows come in random order).

Prints, per fraction: the share of 95 % intervals that contain the run's final LEEP (all rows),
their mean width beside the mean width of the bracket of the joint seen so far, the mean
sample size, and how often the model with the best estimate is the model with the best final
LEEP, per target. `--json` writes the same figures as JSON.

    python3 bench/streaming_estimate.py [--orders 200] [--rate 0.015625] [--n-known] [--sorted]
        [--estimate-after-rows 100] [--interval influence|sample] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
FRACTIONS = (0.10, 0.25, 0.50)
ROW_BUCKETS = {"under 30": (0, 30), "30-99": (30, 100), "100-299": (100, 300), "300 and more": (300, 1 << 62)}
Z95 = 1.959963984540054


def conditional_of(theta: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    joint = np.zeros((classes, theta.shape[1]))
    np.add.at(joint, labels, theta)
    marginal = joint.sum(axis=0)
    conditional = np.zeros_like(joint)
    mass = marginal > 0
    conditional[:, mass] = joint[:, mass] / marginal[mass]
    return joint / max(len(labels), 1), conditional


def leep(theta, labels, conditional) -> np.ndarray:
    """log Σ_z θ_iz P(y_i|z), row by row."""
    return np.log(np.sum(theta * conditional[labels], axis=1))


def projected_terms(theta, labels, sums, rows, m, n) -> np.ndarray:
    """log a_s for sampled rows s, each under the conditional the final joint would have if the
    other rows of the run looked like the other rows seen: the others' sums scaled by
    (n − 1)/(m − 1), plus the row's own (LEEPEstimate)."""
    if len(rows) == 0:
        return np.array([])
    scale = (n - 1) / max(m - 1, 1)
    own = theta[rows]                                    # s × Z
    others = sums[labels[rows]] - own                    # the others' n·P(y_s, z) at m rows
    column = sums.sum(axis=0)[None, :] - own              # the others' n·P(z)
    numerator = scale * others + own
    denominator = scale * column + own
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(denominator > 0, numerator / denominator, 0.0)
    return np.log(np.sum(own * ratio, axis=1))


# Student's t at 97.5 % for 1 to 10 degrees of freedom; beyond, the Cornish-Fisher expansion
# (within 1e-4 of the exact quantile from 10 on). LEEPEstimate holds the same numbers.
T975 = (12.706204736174698, 4.302652729749464, 3.182446305284263, 2.7764451051977934, 2.570581835636314,
        2.4469118511449692, 2.3646242515927844, 2.306004135204166, 2.2621571628540993, 2.2281388519862744)


def t975(freedom: int) -> float:
    if freedom <= len(T975):
        return T975[max(freedom, 1) - 1]
    z, v = Z95, float(freedom)
    return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3))


def influence_half_width(theta, labels, sums, rows, terms, m, n_known) -> float:
    """The half width of the 95 % interval of LEEPEstimate: the sample's own noise (the mean of
    k terms out of the m rows merged) plus the conditional's (the joint of m rows, not of all the
    run's), by the influence of each sampled row on LEEP as a function of the joint's sums (the
    delta method), with Student's t at k - 1 degrees of freedom."""
    k = len(rows)
    own = theta[rows]
    columns = sums.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        conditional = np.where(columns > 0, sums / columns, 0.0)
    prediction = np.exp(terms)
    # a(y, z) = mean over the sample of θ_sz [y_s = y] / p_s; b(z) = Σ_y a(y, z) P(y|z)
    a = np.zeros_like(sums)
    np.add.at(a, labels[rows], own / prediction[:, None])
    a /= k
    b = np.sum(a * conditional, axis=0)
    mean_column = columns / m
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(mean_column > 0, (a[labels[rows]] - b[None, :]) / mean_column[None, :], 0.0)
    influence = terms - terms.mean() + np.sum(own * weights, axis=1)
    sample = terms.var(ddof=1) / k * max(0.0, 1 - k / m)
    conditional_part = influence.var(ddof=1) / m * (max(0.0, 1 - m / n_known) if n_known else 1.0)
    return t975(k - 1) * math.sqrt(sample + conditional_part)


def bracket(joint, conditional) -> tuple[float, float]:
    cells = joint > 0
    lower = float(np.sum(joint[cells] * np.log(conditional[cells])))
    return lower, max(lower, float(np.log(np.sum(joint[cells] * conditional[cells]))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", type=pathlib.Path, default=ROOT / ".deps" / "study" / "predictions")
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--rate", type=float, default=1 / 64, help="the workers' --row-sample-rate")
    parser.add_argument("--n-known", action="store_true",
                        help="the run's row count is known while it streams (its manifests came first): the "
                             "estimate rescales to it and applies the finite-population correction; by default, "
                             "as when producers publish manifests after their chunks, it does neither")
    parser.add_argument("--sorted", action="store_true",
                        help="rows arrive sorted by label (ties in random order), not in random order")
    parser.add_argument("--estimate-after-rows", type=int, default=100,
                        help="rows merged before an estimate is made (leep aggregate --estimate-after-rows)")
    parser.add_argument("--interval", choices=("influence", "sample"), default="influence",
                        help="influence: the sample's noise and the conditional's, Student's t (LEEPEstimate); "
                             "sample: the sample's noise alone, normal quantile (the first interval, for comparison)")
    parser.add_argument("--by-rows", action="store_true",
                        help="also print the coverage by rows merged (under 30, 30-99, 100-299, 300 and more)")
    parser.add_argument("--json", type=pathlib.Path)
    args = parser.parse_args()
    targets = sorted(p for p in args.study.iterdir() if (p / "labels.npy").exists()) if args.study.exists() else []
    if not targets:
        print(f"no study predictions under {args.study}: run examples/transfer-study/run prepare", file=sys.stderr)
        return 1
    rng = np.random.default_rng(20261207)
    per_fraction = {f: {"covered": 0, "intervals": 0, "width": 0.0, "bracket": 0.0, "sample": 0, "none": 0}
                    for f in FRACTIONS}
    top = {f: {"same": 0, "boards": 0} for f in FRACTIONS}
    by_rows = {bucket: [0, 0] for bucket in ROW_BUCKETS}
    pairs, decided, ruled_out, widths, inside = 0, 0, 0, [], True
    for target in targets:
        labels = np.load(target / "labels.npy").astype(np.int64)
        classes = int(labels.max()) + 1
        n = len(labels)
        sources = {p.stem: np.load(p).astype(np.float64) for p in sorted(target.glob("*.npy")) if p.stem != "labels"}
        pairs += len(sources)
        final = {name: float(np.mean(leep(theta, labels, conditional_of(theta, labels, classes)[1])))
                 for name, theta in sources.items()}
        best = max(final, key=final.get)
        # The bracket of pass 1 (all rows): does it alone decide the winner?
        brackets = {name: bracket(*conditional_of(theta, labels, classes)) for name, theta in sources.items()}
        widths += [high - low for low, high in brackets.values()]
        leader = max(brackets, key=lambda name: brackets[name][0])
        decided += int(all(brackets[leader][0] > high for name, (_, high) in brackets.items() if name != leader))
        ruled_out += sum(brackets[leader][0] > high for name, (_, high) in brackets.items() if name != leader)
        inside = inside and all(low - 1e-12 <= final[name] <= high + 1e-12 for name, (low, high) in brackets.items())
        for _ in range(args.orders):
            order = rng.permutation(n)
            if args.sorted:
                order = order[np.argsort(labels[order], kind="stable")]
            sampled = rng.random(n) < args.rate
            for fraction in FRACTIONS:
                m = max(1, int(round(n * fraction)))
                seen = order[:m]
                picked = seen[sampled[seen]]
                estimates = {}
                for name, theta in sources.items():
                    joint, conditional = conditional_of(theta[seen], labels[seen], classes)
                    low_b, high_b = bracket(joint, conditional)
                    stats = per_fraction[fraction]
                    stats["bracket"] += high_b - low_b
                    usable = picked[labels[picked] < classes]
                    known = n if args.n_known else m
                    terms = projected_terms(theta, labels, joint * m, usable, m, known)
                    finite = np.isfinite(terms)
                    terms, usable = terms[finite], usable[finite]
                    if len(terms) < 2 or m < args.estimate_after_rows:
                        stats["none"] += 1
                        continue
                    mean = float(terms.mean())
                    if args.interval == "influence":
                        half = influence_half_width(theta, labels, joint * m, usable, terms, m, n if args.n_known else None)
                    else:
                        correction = max(0.0, 1 - len(terms) / n) if args.n_known else 1.0
                        half = Z95 * math.sqrt(terms.var(ddof=1) / len(terms) * correction)
                    stats["intervals"] += 1
                    covered = int(mean - half <= final[name] <= mean + half)
                    stats["covered"] += covered
                    bucket = by_rows[next(b for b, (low, high) in ROW_BUCKETS.items() if low <= m < high)]
                    bucket[0] += covered
                    bucket[1] += 1
                    stats["width"] += 2 * half
                    stats["sample"] += len(terms)
                    estimates[name] = mean
                if len(estimates) == len(sources):
                    top[fraction]["boards"] += 1
                    top[fraction]["same"] += int(max(estimates, key=estimates.get) == best)
    report = {"pairs": pairs, "targets": len(targets), "orders": args.orders, "rate": args.rate,
              "bracket": {"targets_decided": decided, "mean_width": sum(widths) / max(len(widths), 1),
                          "losers_ruled_out": ruled_out, "losers": pairs - len(targets),
                          "winner_inside_every_bracket": inside},
              "sorted_by_label": args.sorted, "n_known": args.n_known, "fractions": {}}
    kind = "orders sorted by label" if args.sorted else "random orders"
    print(f"{pairs} pairs over {len(targets)} targets, {args.orders} {kind} each, rows sampled at {args.rate:g}, "
          f"run size {'known' if args.n_known else 'unknown'} while streaming")
    print(f"the bracket of pass 1 alone decides the winner in {decided} of {len(targets)} targets; its mean width "
          f"{sum(widths) / max(len(widths), 1):.3f} nats; it rules out {ruled_out} of the {pairs - len(targets)} "
          f"models that do not win; every final LEEP inside its bracket: {inside}")
    print(f"{'rows seen':>9} {'intervals':>9} {'cover final':>11} {'mean width':>10} {'bracket width':>13} "
          f"{'mean sample':>11} {'no estimate':>11} {'top model right':>15}")
    for fraction in FRACTIONS:
        s, t = per_fraction[fraction], top[fraction]
        total = s["intervals"] + s["none"]
        row = {
            "intervals": s["intervals"], "coverage": s["covered"] / max(s["intervals"], 1),
            "mean_width": s["width"] / max(s["intervals"], 1), "mean_bracket_width": s["bracket"] / max(total, 1),
            "mean_sample": s["sample"] / max(s["intervals"], 1), "no_estimate": s["none"] / max(total, 1),
            "top_model_right": t["same"] / max(t["boards"], 1), "boards": t["boards"],
        }
        report["fractions"][f"{fraction:.2f}"] = row
        print(f"{fraction:>8.0%} {row['intervals']:>9} {row['coverage']:>11.1%} {row['mean_width']:>10.3f} "
              f"{row['mean_bracket_width']:>13.3f} {row['mean_sample']:>11.1f} {row['no_estimate']:>11.1%} "
              f"{row['top_model_right']:>15.1%}")
    report["coverage_by_rows_merged"] = {bucket: {"intervals": total, "coverage": covered / max(total, 1)}
                                         for bucket, (covered, total) in by_rows.items()}
    if args.by_rows:
        print("rows merged: " + "; ".join(f"{bucket} {covered / max(total, 1):.1%} of {total}"
                                          for bucket, (covered, total) in by_rows.items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
