#!/usr/bin/env python3
"""How honest is the estimate of LEEP while pass 1 streams (docs/transferability.md, section 10)?

For every (source, target) pair of the transfer study (`examples/transfer-study/run prepare`
writes `.deps/study/predictions/<target>/<source>.npy` and `labels.npy`), and for ORDERS random
orders of the target's rows: at 10 %, 25 % and 50 % of the rows, the estimate the aggregator
publishes in its streaming records — the mean of log Σ_z θ_sz P̂(y_s|z) over the sampled rows
seen so far, P̂ the conditional of the joint of the rows seen so far, ± 1.96 standard errors with
the finite-population correction (`LEEPEstimate`) — is computed here in float64 NumPy, with the
worker's sample: each row sampled with probability RATE (the worker takes ⌈rows × RATE⌉ of each
chunk by a hash of the row, a uniform choice when the rows come in random order).

Prints, per fraction: the share of 95 % intervals that contain the run's final LEEP (all rows),
their mean width beside the mean width of the bracket of the joint seen so far, the mean
sample size, and how often the model with the best estimate is the model with the best final
LEEP, per target. `--json` writes the same figures as JSON.

    python3 bench/streaming_estimate.py [--orders 200] [--rate 0.015625] [--n-known] [--sorted] [--json out.json]
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
                    terms = terms[np.isfinite(terms)]
                    if len(terms) < 2:
                        stats["none"] += 1
                        continue
                    mean = float(terms.mean())
                    correction = max(0.0, 1 - len(terms) / n) if args.n_known else 1.0
                    half = Z95 * math.sqrt(terms.var(ddof=1) / len(terms) * correction)
                    stats["intervals"] += 1
                    stats["covered"] += int(mean - half <= final[name] <= mean + half)
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
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
