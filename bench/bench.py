"""leepstream's benchmark: every comparison of issue 5 in one run, on the same data.

    bench/run [--reps 5] [--cases a,b] [--skip-pipeline] [--scaling | --only-scaling]

For each case: `leep score` against thuml's NumPy LEEP (bench/thuml_leep.py), the float64 NumPy
reference (Tests/reference) and the floor (two plain read passes over the mapped file,
bench/Floor). For 50,000 × 2,048 float32 features: `leep score --features` (every feature metric:
LogME, the H-scores, GBC, TransRate, SFDA) against thuml's NumPy code (bench/thuml_features.py),
the public GBC / TransRate / SFDA algorithms in NumPy (bench/public_feature_metrics.py), the
float64 reference and one DSYRK pass, and the same features through the pipeline. For the 800 MB case, the pipeline on a local broker with 2 workers against raw
librdkafka producing and consuming the same records (bench/RawKafka), and 1 against 2 workers.
A warm-up, then `--reps` measured repetitions; medians and ratios. Results go to
.deps/bench/results.json and are printed as the tables of docs/benchmarks.md."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "Tests" / "reference"))
from generate import CASES, FEATURE_CASE, generate, generate_features  # noqa: E402
from leep_reference import leep_scores  # noqa: E402
from thuml_leep import log_expected_empirical_prediction  # noqa: E402

BUILD = ROOT / ".build" / "release"
DATA = ROOT / ".deps" / "bench"
PORT = int(os.environ.get("LEEP_BENCH_BROKER_PORT", "19500"))


def timed(function, reps):
    function()  # warm-up: page cache, code paths
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), samples


def run(*args, env=None) -> str:
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True, env=env).stdout


def score_case(name: str, reps: int) -> dict:
    predictions, labels = generate(DATA, name)
    size = predictions.stat().st_size
    n, z, y = CASES[name]
    result = {"case": name, "n": n, "Z": z, "Y": y, "bytes": size}
    leep_cli = [BUILD / "leep", "score", "--predictions", predictions, "--labels", labels, "--json"]
    result["leep_score"] = timed(lambda: run(*leep_cli), reps)
    result["leep_score_accuracy"] = timed(lambda: run(*leep_cli, "--eep-accuracy"), reps)
    ours = json.loads(run(*leep_cli))
    ours_accuracy = json.loads(run(*leep_cli, "--eep-accuracy"))
    # Peak resident memory of `leep score`, less the mapped file it reads (its pages count too).
    peak = subprocess.run(["/usr/bin/time", "-f", "%M", *map(str, leep_cli)], capture_output=True, text=True)
    result["peak_rss_beyond_file_mb"] = (int(peak.stderr.strip().splitlines()[-1]) * 1024 - size) / 1e6

    def thuml():
        return log_expected_empirical_prediction(np.load(predictions), np.load(labels))

    result["thuml"] = timed(thuml, reps)
    result["thuml_leep"] = thuml()

    def reference():
        return leep_scores(np.load(predictions), np.load(labels))

    result["numpy_float64"] = timed(reference, reps)
    expected = reference()
    result["floor"] = timed(lambda: run(BUILD / "leep-bench-floor", predictions, "--threads", str(os.cpu_count())), reps)
    # The floor is the faster of ours (all cores, whole process) and NumPy's two single-threaded
    # passes (in-process); pass 2's product is the faster of NumPy's bundled BLAS and ours.
    result["numpy_floor"] = json.loads(run(sys.executable, ROOT / "bench" / "numpy_floor.py", predictions, y, reps))
    result["floor_best"] = min(result["floor"][0], result["numpy_floor"]["read_twice"])
    gemm = [float(run(BUILD / "leep-bench-floor", "dgemm", n, z, y, "--threads", os.cpu_count()))
            for _ in range(reps + 1)][1:]
    result["gemm_ours"] = statistics.median(gemm)
    result["gemm_best"] = min(result["gemm_ours"], result["numpy_floor"]["gemm"])
    result["phases"] = {"leep score": phase_profile(leep_cli, reps),
                        "--eep-accuracy": phase_profile([*leep_cli, "--eep-accuracy"], reps)}
    result["agrees"] = all(abs(mine[key] - expected[key]) <= 1e-9 * abs(expected[key])
                           for mine in (ours, ours_accuracy) for key in ("leep", "nce")) and \
        abs(ours_accuracy["eep_accuracy"] - expected["eep_accuracy"]) <= 1e-12
    result["leep"] = ours["leep"]
    return result


def phase_profile(command: list, reps: int) -> dict:
    """Median seconds of each phase `leep score --phase-times` reports, and of the rest of the
    whole command's wall time (process start, loading, exit): `reps` runs after a warm-up."""
    samples = []
    for _ in range(reps + 1):
        start = time.perf_counter()
        done = subprocess.run([str(a) for a in command] + ["--phase-times"], check=True, capture_output=True, text=True)
        wall = time.perf_counter() - start
        phases = {line.split()[1]: float(line.split()[2]) for line in done.stderr.splitlines() if line.startswith("phase ")}
        phases["start and exit"] = wall - sum(phases.values())
        phases["whole command"] = wall
        samples.append(phases)
    samples = samples[1:]
    return {name: statistics.median(s[name] for s in samples) for name in samples[0]}


#: Every feature key of `leep score --features --json` and of a run's score record.
FEATURE_KEYS = ("logme", "hscore", "hscore_shrinkage", "ledoit_wolf_shrinkage", "gbc_diagonal", "gbc_spherical",
                "transrate", "sfda", "sfda_shrinkage")
#: The scores thuml's code computes (bench/thuml_features.py).
THUML_KEYS = ("logme", "hscore", "hscore_shrinkage")
#: The public algorithms of bench/public_feature_metrics.py: each `--metrics` name, its keys.
PUBLIC_METRICS = {"gbc": ("gbc_diagonal", "gbc_spherical"), "transrate": ("transrate",),
                  "sfda": ("sfda", "sfda_shrinkage")}
#: Each public program beside the `leep score --features --metrics` run that computes the same keys
#: alone (only the statistics those metrics read; SFDA's passes only for sfda).
ALONE = {"thuml": "logme,hscore,hscore_shrinkage", "gbc": "gbc_diagonal,gbc_spherical", "transrate": "transrate",
         "sfda": "sfda"}
#: A public metric whose first run takes longer than this is run once.
PUBLIC_REPEAT_LIMIT_S = 180.0


def measured(*args) -> dict:
    """One run of a command under /usr/bin/time: wall seconds, peak RSS (MB), CPU seconds
    (user + system) and its stdout."""
    marker = "@@time@@"
    done = subprocess.run(["/usr/bin/time", "-f", f"{marker} %e %M %U %S", *map(str, args)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    line = next(l for l in reversed(done.stderr.splitlines()) if l.startswith(marker))
    wall, peak_kb, user, system = line.split()[1:]
    return {"seconds": float(wall), "peak_rss_mb": int(peak_kb) * 1024 / 1e6, "cpu_s": float(user) + float(system),
            "stdout": done.stdout}


def relative(a, b) -> float | None:
    """|a − b| / |b| (0 when both are 0); None when either is missing."""
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return None
    return 0.0 if a == b else abs(a - b) / abs(b)


def tree_state() -> dict:
    """The commit the binaries were built from, and whether Sources/ had changes on top."""
    head = run("git", "-C", ROOT, "rev-parse", "--short", "HEAD").strip()
    dirty = run("git", "-C", ROOT, "status", "--porcelain", "--", "Sources", "Package.swift").strip()
    return {"commit": head, "sources_modified": dirty.splitlines() if dirty else []}


def features_case(reps: int) -> dict:
    """50,000 × 2,048 float32 features (Y = 10) on the same file:

    * `leep score --features` — one command, every feature metric (LogME, both H-scores, GBC
      diagonal and spherical, TransRate, SFDA): `reps` runs after a warm-up, each under
      /usr/bin/time (wall, peak RSS, CPU);
    * thuml's NumPy LogME and H-scores (bench/thuml_features.py, its own process, at most 3 runs);
    * the public GBC, TransRate and SFDA algorithms in NumPy (bench/public_feature_metrics.py),
      each metric in its own process so that its peak RSS is its own: at most 3 runs, 1 when the
      first takes longer than PUBLIC_REPEAT_LIMIT_S;
    * the float64 reference (Tests/reference/feature_reference.py, its `feature_scores`, once, in
      its own process): ours must agree on every key to 1e-8 relative;
    * the floor: one DSYRK pass over the file (`leep-bench-floor dsyrk FILE`), when built;
    * the pipeline (`features_pipeline`)."""
    features, labels = generate_features(DATA)
    name, n, d, y = FEATURE_CASE
    size = features.stat().st_size
    result = {"case": name, "n": n, "D": d, "Y": y, "bytes": size, "tree": tree_state()}
    leep_cli = [BUILD / "leep", "score", "--features", features, "--labels", labels, "--json"]
    measured(*leep_cli)  # warm-up: page cache, code paths
    runs = [measured(*leep_cli) for _ in range(reps)]
    result["leep_score"] = (statistics.median(r["seconds"] for r in runs), [r["seconds"] for r in runs])
    result["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    result["cpu_s"] = statistics.median(r["cpu_s"] for r in runs)
    ours = json.loads(runs[0]["stdout"])
    result["ours"] = {key: ours.get(key) for key in FEATURE_KEYS}
    if ours.get("unscored"):
        result["ours_unscored"] = ours["unscored"]
    result["ours_repeatable"] = all(json.loads(r["stdout"]) == ours for r in runs)
    print(f"  leep score --features: {result['leep_score'][0]:.2f} s", file=sys.stderr, flush=True)
    checkpoint(result)

    # thuml's code takes about a minute here: at most 3 runs (the page cache is warm from ours).
    thuml_runs = [json.loads(run(sys.executable, ROOT / "bench" / "thuml_features.py", features, labels))
                  for _ in range(max(1, min(reps, 3)))]
    result["thuml"] = (statistics.median(r["seconds"] for r in thuml_runs), [r["seconds"] for r in thuml_runs])
    result["thuml_peak_rss_mb"] = max(r["peak_rss_mb"] for r in thuml_runs)
    result["thuml_scores"] = {key: thuml_runs[0][key] for key in THUML_KEYS}
    print(f"  thuml LogME/H-scores: {result['thuml'][0]:.2f} s", file=sys.stderr, flush=True)
    checkpoint(result)
    result["public"] = {}
    for metric in PUBLIC_METRICS:
        result["public"][metric] = public_metric(features, labels, metric, reps)
        checkpoint(result)

    result["alone"] = {}
    for metric, keys in ALONE.items():
        alone = [measured(*leep_cli, "--metrics", keys) for _ in range(reps)]
        scores = json.loads(alone[0]["stdout"])
        result["alone"][metric] = {
            "keys": keys, "seconds": statistics.median(r["seconds"] for r in alone),
            "samples": [r["seconds"] for r in alone], "peak_rss_mb": max(r["peak_rss_mb"] for r in alone),
            "cpu_s": statistics.median(r["cpu_s"] for r in alone),
            # The same keys as the command with every metric: exactly, or to rounding for SFDA
            # (alone, it gathers the within-class scatter itself instead of summing per-class ones).
            "vs_every_metric": max(relative(scores.get(key), ours.get(key)) or 0.0 for key in keys.split(","))}
        print(f"  leep score --features --metrics {keys}: {result['alone'][metric]['seconds']:.2f} s",
              file=sys.stderr, flush=True)
        checkpoint(result)

    reference = measured(sys.executable, ROOT / "Tests" / "reference" / "feature_reference.py", features, labels)
    expected = json.loads(reference["stdout"])
    result["reference"] = {key: expected.get(key) for key in FEATURE_KEYS}
    result["reference_seconds"] = reference["seconds"]
    result["reference_peak_rss_mb"] = reference["peak_rss_mb"]
    result["ours_vs_reference"] = {key: relative(ours.get(key), expected.get(key)) for key in FEATURE_KEYS}
    result["agrees"] = all(v is not None and v <= 1e-8 for v in result["ours_vs_reference"].values())
    result["thuml_vs_reference"] = max(relative(thuml_runs[0][key], expected[key]) for key in THUML_KEYS)
    result["public_vs_reference"] = {key: relative(p["scores"].get(key), expected.get(key))
                                     for p in result["public"].values() for key in p["scores"]}
    print(f"  float64 reference: {reference['seconds']:.1f} s, ours agree: {result['agrees']}", file=sys.stderr, flush=True)
    checkpoint(result)

    floor = BUILD / "leep-bench-floor"
    try:
        samples = [float(run(floor, "dsyrk", features).split()[0]) for _ in range(reps + 1)][1:]
        result["floor"] = (statistics.median(samples), samples)
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        result["floor"] = None  # not built, or built without the dsyrk mode yet
    result["pipeline"] = features_pipeline(features, labels, reps, ours)
    return result


def checkpoint(result: dict) -> None:
    """What the features case has measured so far, in case a later step fails."""
    (DATA / "features-partial.json").write_text(json.dumps(result, indent=1, default=str))


def public_metric(features, labels, metric: str, reps: int) -> dict:
    """bench/public_feature_metrics.py --metrics METRIC in its own process: the metric's own
    seconds (from its JSON; for GBC the diagonal and spherical scores each), the load (np.load and
    the float64 upcast), the process's wall time and peak RSS."""
    script = [sys.executable, ROOT / "bench" / "public_feature_metrics.py", features, labels, "--metrics", metric]
    runs = [measured(*script)]
    if runs[0]["seconds"] <= PUBLIC_REPEAT_LIMIT_S:
        runs += [measured(*script) for _ in range(max(1, min(reps, 3)) - 1)]
    outputs = [json.loads(r["stdout"]) for r in runs]
    keys = PUBLIC_METRICS[metric]
    seconds = {key: statistics.median(o["seconds"][key] for o in outputs)
               for key in outputs[0]["seconds"] if key != "load"}
    out = {"runs": len(runs), "seconds": seconds, "metric_seconds": sum(seconds.values()),
           "load_seconds": statistics.median(o["seconds"]["load"] for o in outputs),
           "process_seconds": statistics.median(r["seconds"] for r in runs),
           "process_samples": [r["seconds"] for r in runs],
           "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
           "scores": {key: outputs[0].get(key) for key in keys}}
    if outputs[0].get("errors"):
        out["errors"] = outputs[0]["errors"]
    print(f"  public {metric}: {out['metric_seconds']:.2f} s (+ load {out['load_seconds']:.2f} s), "
          f"{len(runs)} run(s)", file=sys.stderr, flush=True)
    return out


#: Worker options of the measured feature runs. A worker's per-class scatter matrices make each
#: partial of this case about 185 MB (Y·D(D + 1)/2 float64 values and the moments), and with the
#: default flush interval (1 s) a worker that is behind flushes one every second: the broker,
#: which keeps every record in memory here, grew past 20 GiB and was killed by the kernel on this
#: machine. With a long interval a worker flushes when its pending bytes reach the limit
#: (256 MiB, the statistics counted) or the stream pauses. features_pipeline also tries the
#: defaults once, last, under the memory guard below, and reports what happened.
FEATURE_WORKER_ARGS = ("--flush-interval", "600")
#: The broker's resident memory past which a feature run is abandoned (the machine is shared).
BROKER_LIMIT_MB = 6000.0


def features_pipeline(features, labels, reps: int, local: dict) -> dict:
    """The same features through the pipeline (local broker, 2 workers, 1 aggregator), with
    10-class softmax outputs beside them (a run carries both; the workers' task passes are LEEP's
    pass 2 and SFDA's mixing and scoring passes), workers run with FEATURE_WORKER_ARGS: time from
    the first record produced to the final score, worker CPU seconds per GB of chunk data (pass 1
    and the tasks, from the workers' own accounting, and their whole processes'), the
    aggregator's CPU (it computes the metrics from the merged statistics), each process's peak
    RSS and the broker's, the partials flushed, and whether every feature key of the final
    record equals `leep score --features` on the same file to 1e-9. Then one run with the
    workers' default options, under the broker memory guard."""
    name, n, _, y = FEATURE_CASE
    predictions = DATA / f"{name}.predictions.npy"
    if not predictions.exists():
        rng = np.random.default_rng(17)
        np.save(predictions, rng.dirichlet(np.full(10, 0.3), size=n).astype(np.float32))
    gigabytes = (pathlib.Path(features).stat().st_size + predictions.stat().st_size) / 1e9
    out = {"gigabytes": gigabytes, "worker_args": list(FEATURE_WORKER_ARGS), "broker_limit_mb": BROKER_LIMIT_MB}
    broker = Broker()
    try:
        try:
            once = [pipeline_once(broker, predictions, labels, 2, features, worker_args=FEATURE_WORKER_ARGS,
                                  timeout=600, broker_limit_mb=BROKER_LIMIT_MB)
                    for _ in range(1 + max(1, min(reps, 3)))]
            samples = once[1:]  # the first is the warm-up
        except PipelineFailed as failure:
            out.update(failed=str(failure), broker_peak_rss_mb=failure.broker_peak_rss_mb)
            samples = []
        if samples:
            out.update(summarise_pipeline(samples, gigabytes, local))
            print(f"  pipeline: {out['first_to_final']:.2f} s first record → final", file=sys.stderr, flush=True)
        try:
            default = pipeline_once(broker, predictions, labels, 2, features, timeout=600,
                                    broker_limit_mb=BROKER_LIMIT_MB)
            out["default_options"] = summarise_pipeline([default], gigabytes, local)
        except PipelineFailed as failure:
            out["default_options"] = {"failed": str(failure), "broker_peak_rss_mb": failure.broker_peak_rss_mb}
        print(f"  pipeline, default worker options: {out['default_options'].get('failed') or 'final'}",
              file=sys.stderr, flush=True)
    finally:
        broker.stop()
    return out


def summarise_pipeline(samples: list, gigabytes: float, local: dict) -> dict:
    worst = {}
    for key in FEATURE_KEYS:  # None: a record or `leep score` lacks the key (or has it null)
        differences = [relative(s.get(key), local.get(key)) for s in samples]
        worst[key] = None if None in differences else max(differences)

    def median(key):
        return statistics.median(s[key] for s in samples)

    return {"runs": len(samples), "first_to_final": median("first_to_final"), "last_to_final": median("last_to_final"),
            "first_to_final_samples": [s["first_to_final"] for s in samples],
            "cpu_s_per_gb": statistics.median((s["cpu_pass1"] + s["cpu_pass2"]) / gigabytes for s in samples),
            "cpu_pass1_s_per_gb": median("cpu_pass1") / gigabytes,
            "cpu_tasks_s_per_gb": median("cpu_pass2") / gigabytes,
            "worker_process_cpu_s_per_gb": median("worker_process_cpu") / gigabytes,
            "aggregator_cpu_s": median("aggregator_cpu"), "partials": median("partials"),
            "worker_peak_rss_mb": max(s["worker_peak_rss_mb"] for s in samples),
            "aggregator_peak_rss_mb": max(s["aggregator_peak_rss_mb"] for s in samples),
            "broker_peak_rss_mb": max(s["broker_peak_rss_mb"] for s in samples),
            "worst_relative_difference": worst,
            "agrees": all(v is not None and v <= 1e-9 for v in worst.values())}


def report_features(r: dict) -> str:
    p = r["pipeline"]
    ours = r["leep_score"][0]
    thuml = r["thuml"][0]
    floor = r["floor"][0] if r.get("floor") else None
    floor_cell = f"{floor:.2f} s" if floor else "—"
    ratio_cell = f"{ours / floor:.2f}×" if floor else "—"
    tree = r.get("tree", {})
    lines = [
        f"Built from {tree.get('commit', '?')}"
        + (f" with Sources/ modified: {', '.join(tree['sources_modified'])}" if tree.get("sources_modified") else "")
        + ".",
        "", "| features case | n × D × Y | file | `leep score --features` (every metric) | its peak RSS | its CPU | "
        "thuml NumPy LogME + H-scores (a) | (a)'s peak RSS | floor: one DSYRK pass (c) | (a)/ours | ours/(c) | "
        "ours agree with the float64 reference to 1e-8 | thuml vs reference, worst relative |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {r['case']} | {r['n']:,} × {r['D']:,} × {r['Y']} | {r['bytes'] / 1e6:,.0f} MB | {ours:.2f} s | "
        f"{r['peak_rss_mb']:,.0f} MB | {r['cpu_s']:.1f} s | {thuml:.2f} s | {r['thuml_peak_rss_mb']:,.0f} MB | "
        f"{floor_cell} | {thuml / ours:.2f}× | {ratio_cell} | {'yes' if r['agrees'] else 'NO'} | "
        f"{r['thuml_vs_reference']:.1e} |",
        "", "| public algorithm in NumPy, own process | keys | runs | its seconds (load excluded) | load + float64 upcast | "
        "process wall | process peak RSS | vs float64 reference, worst relative |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    names = {"gbc": "GBC (stable_transfer `get_gbc_score`, diagonal then spherical)",
             "transrate": "TransRate (tllib `transrate`)", "sfda": "SFDA (TencentARC `SFDA_Score`)"}
    total_public = 0.0
    for metric, out in r["public"].items():
        seconds = " + ".join(f"{s:.2f}" for s in out["seconds"].values())
        worst = [r["public_vs_reference"].get(key) for key in out["scores"]]
        worst_cell = "failed" if any(v is None for v in worst) else f"{max(worst):.1e}"
        total_public += out["process_seconds"]
        lines.append(f"| {names[metric]} | {', '.join(out['scores'])} | {out['runs']} | {seconds} s | "
                     f"{out['load_seconds']:.2f} s | {out['process_seconds']:.2f} s | {out['peak_rss_mb']:,.0f} MB | "
                     f"{worst_cell} |")
    all_theirs = total_public + thuml
    if r.get("alone"):
        lines += ["", "Each metric alone: `leep score --features F --labels L --metrics KEYS --json` (only the statistics "
                  "those metrics read; SFDA's two further passes only for sfda) against the public program that "
                  "computes the same keys, each in its own process, whole process wall time (load included on both "
                  "sides), medians:", "",
                  "| metric (keys) | ours alone | its peak RSS | its CPU | theirs (process) | their peak RSS | "
                  "theirs / ours | ours alone vs ours with every metric, worst relative |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for metric, alone in r["alone"].items():
            if metric == "thuml":
                theirs_s, theirs_rss, title = thuml, r["thuml_peak_rss_mb"], "LogME + H-scores (thuml)"
            else:
                out = r["public"][metric]
                theirs_s, theirs_rss, title = out["process_seconds"], out["peak_rss_mb"], names[metric].split(" (")[0]
            lines.append(f"| {title} (`{alone['keys']}`) | {alone['seconds']:.2f} s | {alone['peak_rss_mb']:,.0f} MB | "
                         f"{alone['cpu_s']:.1f} s | {theirs_s:.2f} s | {theirs_rss:,.0f} MB | {theirs_s / alone['seconds']:.2f}× | "
                         f"{alone['vs_every_metric']:.1e} |")
    lines += [
        "", f"Every metric: ours {ours:.2f} s in one command (peak RSS {r['peak_rss_mb']:,.0f} MB); theirs "
        f"{all_theirs:.2f} s in four processes (thuml + GBC + TransRate + SFDA, each loading the file; peak RSS "
        f"{max([r['thuml_peak_rss_mb']] + [o['peak_rss_mb'] for o in r['public'].values()]):,.0f} MB): "
        f"{all_theirs / ours:.2f}× ours. Float64 reference: {r['reference_seconds']:.1f} s, "
        f"{r['reference_peak_rss_mb']:,.0f} MB.",
        "", "| key | `leep score --features` | float64 reference | ours vs reference | public / thuml | theirs vs reference |",
        "| --- | --- | --- | --- | --- | --- |"]
    theirs = dict(r["thuml_scores"])
    for out in r["public"].values():
        theirs.update(out["scores"])
    for key in FEATURE_KEYS:
        mine, expected, other = r["ours"].get(key), r["reference"].get(key), theirs.get(key)
        difference = r["ours_vs_reference"].get(key)
        other_difference = relative(other, expected)
        lines.append(f"| {key} | {fmt(mine)} | {fmt(expected)} | {fmt(difference, '.1e')} | {fmt(other)} | "
                     f"{fmt(other_difference, '.1e')} |")
    lines += ["", f"Pipeline: 2 workers (`leep worker {' '.join(p['worker_args'])}`), 1 aggregator, local broker "
              f"(memory storage, abandoned past {p['broker_limit_mb']:,.0f} MB); the same features + 10-class softmax, "
              f"{p['gigabytes']:.2f} GB.", "",
              "| pipeline | first record → final score | last record → final | worker CPU (pass 1 + tasks) | pass 1 | "
              "tasks (LEEP pass 2, SFDA mix, SFDA score) | worker processes' CPU | aggregator CPU | partials flushed | "
              "peak RSS worker / aggregator / broker | every feature key equals `leep score --features` to 1e-9 (worst) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for label, q in [("measured options", p), ("default worker options, once", p.get("default_options") or {})]:
        if q.get("failed") or "first_to_final" not in q:
            peak = q.get("broker_peak_rss_mb")
            lines.append(f"| {label} | failed: {q.get('failed', 'not run')} | | | | | | | | "
                         f"broker {fmt(peak, ',.0f')} MB | |")
            continue
        worst = max((v for v in q["worst_relative_difference"].values() if v is not None), default=None)
        lines.append(
            f"| {label} | {q['first_to_final']:.2f} s | {q['last_to_final']:.2f} s | {q['cpu_s_per_gb']:.1f} s/GB | "
            f"{q['cpu_pass1_s_per_gb']:.1f} s/GB | {q['cpu_tasks_s_per_gb']:.1f} s/GB | "
            f"{q['worker_process_cpu_s_per_gb']:.1f} s/GB | {q['aggregator_cpu_s']:.1f} s | {q['partials']:.0f} | "
            f"{q['worker_peak_rss_mb']:,.0f} / {q['aggregator_peak_rss_mb']:,.0f} / {q['broker_peak_rss_mb']:,.0f} MB | "
            f"{'yes' if q['agrees'] else 'NO'} ({fmt(worst, '.1e')}) |")
    return "\n".join(lines)


def fmt(value, spec: str = ".10g") -> str:
    return "—" if value is None else format(value, spec)


class Broker:
    """The local broker on its own port, fresh (memory storage) for each repetition. Another
    port, topic prefix and log folder let a second benchmark (bench/scaling.py) run beside this
    one without sharing topics or logs."""

    def __init__(self, port: int = PORT, prefix: str = "bench.", logs: pathlib.Path = DATA):
        self.port, self.logs = port, logs
        self.env = dict(os.environ, LEEP_BROKER_PORT=str(port), LEEP_TOPIC_PREFIX=prefix)
        self.common = ["--brokers", f"127.0.0.1:{port}", "--topic-prefix", prefix,
                       "--kafka-config", "session.timeout.ms=6000"]
        self.processes = []

    def restart(self):
        self.stop()
        run(ROOT / "ops" / "broker", "start", env=self.env)

    def stop(self):
        for process in self.processes:
            process.terminate()
            process.wait()
        self.processes = []
        subprocess.run([ROOT / "ops" / "broker", "stop"], env=self.env, capture_output=True)

    def role(self, *args) -> subprocess.Popen:
        log = open(self.logs / f"{args[0]}-{len(self.processes)}.log", "w")
        process = subprocess.Popen([BUILD / "leep", *args, *self.common], stdout=log, stderr=subprocess.STDOUT)
        process.log = log.name  # type: ignore[attr-defined]
        self.processes.append(process)
        return process


def wait_assigned(processes, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all("partitions assigned" in pathlib.Path(p.log).read_text() for p in processes):
            return
        time.sleep(0.1)
    raise RuntimeError("workers never got partitions")


def pipeline_once(broker: Broker, predictions, labels, workers: int, features=None, worker_args=(),
                  timeout: int = 900, broker_limit_mb: float | None = None) -> dict:
    """One run through a fresh broker, `workers` workers (with `worker_args`) and 1 aggregator.
    With `broker_limit_mb`, the broker's resident memory is watched: past the limit the run is
    abandoned (PipelineFailed), before the machine runs out of memory."""
    broker.restart()
    roles = [broker.role("worker", *worker_args) for _ in range(workers)]
    aggregator = broker.role("aggregate")
    wait_assigned(roles)
    start = time.perf_counter()
    _, produced, output, watch = publish_and_wait(
        broker, 1, timeout, broker_limit_mb,
        lambda: run(BUILD / "leep", "produce", "--model", "bench", "--dataset", "bench", "--predictions", predictions,
                    "--labels", labels, *(["--features", features] if features else []), *broker.common))
    final = time.perf_counter()
    worker_cpu = sum(process_cpu_s(p) for p in roles)
    worker_rss = max(peak_rss_mb(p) for p in roles)
    aggregator_cpu, aggregator_rss = process_cpu_s(aggregator), peak_rss_mb(aggregator)
    for process in roles:  # SIGTERM: each logs its CPU time per pass on the way out
        process.terminate()
        process.wait()
    cpu1 = cpu2 = 0.0
    partials = 0
    for process in roles:
        text = pathlib.Path(process.log).read_text()
        cpu1 += float(re.search(r"cpu_pass1_s=([0-9.e-]+)", text).group(1))
        cpu2 += float(re.search(r"cpu_tasks_s=([0-9.e-]+)", text).group(1))
        partials += int(re.search(r"partials=(\d+)", text).group(1))
    broker.stop()
    if watch.tripped:
        raise PipelineFailed(f"the broker's memory passed {broker_limit_mb:,.0f} MB {final - start:.0f} s after the "
                             f"first record (workers had flushed {partials} partials); run abandoned",
                             broker_peak_rss_mb=watch.peak_mb)
    lines = output.splitlines()
    record = json.loads(lines[-1]) if lines else {}
    if record.get("status") != "final":
        raise PipelineFailed(f"no final score after {final - start:.0f} s: {record or 'nothing on the score topic'}",
                             broker_peak_rss_mb=watch.peak_mb)
    return {"first_to_final": final - start, "last_to_final": final - produced, "produce": produced - start,
            "cpu_pass1": cpu1, "cpu_pass2": cpu2, "leep": record["leep"], "partials": partials,
            "worker_process_cpu": worker_cpu, "worker_peak_rss_mb": worker_rss,
            "aggregator_cpu": aggregator_cpu, "aggregator_peak_rss_mb": aggregator_rss,
            "broker_peak_rss_mb": watch.peak_mb,
            **({key: record.get(key) for key in FEATURE_KEYS} if features else {})}


def publish_and_wait(broker: Broker, count: int, timeout: int, broker_limit_mb: float | None, publish):
    """Starts a `leep scores` waiter for `count` score records, runs `publish()`, then waits for
    them, the broker's memory watched meanwhile (`BrokerWatch`). Returns what `publish()` gave,
    when it ended (`time.perf_counter()`), the waiter's output and the watch."""
    waiter = subprocess.Popen([BUILD / "leep", "scores", "--wait-count", str(count), "--timeout", str(timeout), "--json",
                               *broker.common], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    watch = BrokerWatch(broker_limit_mb, waiter, broker.port)
    try:
        published = publish()
        ended = time.perf_counter()
        output, _ = waiter.communicate()
    finally:
        watch.stop()
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    return published, ended, output, watch


class PipelineFailed(RuntimeError):
    """A benchmark run that gave no final score (the reason), with the broker's peak memory."""

    def __init__(self, reason: str, broker_peak_rss_mb: float | None = None):
        super().__init__(reason)
        self.broker_peak_rss_mb = broker_peak_rss_mb


class BrokerWatch:
    """Samples the bench broker's resident memory every 0.2 s (its pid file, ops/broker); past
    `limit_mb` (when given) kills `waiter`, which ends the run early."""

    def __init__(self, limit_mb: float | None, waiter: subprocess.Popen, port: int = PORT):
        self.limit_mb, self.waiter, self.port = limit_mb, waiter, port
        self.peak_mb = 0.0
        self.tripped = False
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)
        self.thread.start()

    def watch(self):
        pidfile = ROOT / ".deps" / "broker" / f"tansu-{self.port}.pid"
        while not self.done.wait(0.2):
            try:
                status = pathlib.Path(f"/proc/{int(pidfile.read_text())}/status").read_text()
            except (OSError, ValueError):
                continue
            found = re.search(r"VmRSS:\s+(\d+) kB", status)
            if not found:
                continue
            self.peak_mb = max(self.peak_mb, int(found.group(1)) / 1024)
            if self.limit_mb is not None and self.peak_mb > self.limit_mb and not self.tripped:
                self.tripped = True
                self.waiter.kill()

    def stop(self):
        self.done.set()
        self.thread.join()


def process_cpu_s(process: subprocess.Popen) -> float:
    """User + system CPU seconds of a running process so far (/proc/PID/stat)."""
    fields = pathlib.Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(process: subprocess.Popen) -> float:
    """The peak resident memory of a running process so far (VmHWM)."""
    status = pathlib.Path(f"/proc/{process.pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def raw_once(broker: Broker, predictions, labels) -> dict:
    broker.restart()
    brokers = f"127.0.0.1:{PORT}"
    produced = json.loads(run(BUILD / "leep-bench-kafka", "produce", brokers, "bench.chunks", predictions, labels))
    consumes = [json.loads(run(BUILD / "leep-bench-kafka", "consume", brokers, "bench.chunks", produced["records"]))
                for _ in range(2)]
    broker.stop()
    return {"produce": produced["seconds"], "consume": statistics.median(c["seconds"] for c in consumes),
            "bytes": produced["bytes"], "records": produced["records"]}


def pipeline_case(reps: int) -> dict:
    predictions, labels = generate(DATA, "imagenet1k-200k")
    broker = Broker()
    try:
        out = {}
        for label, function in [
            ("raw", lambda: raw_once(broker, predictions, labels)),
            ("pipeline_2_workers", lambda: pipeline_once(broker, predictions, labels, 2)),
            ("pipeline_1_worker", lambda: pipeline_once(broker, predictions, labels, 1)),
        ]:
            function()  # warm-up
            samples = [function() for _ in range(reps)]
            out[label] = {key: statistics.median(s[key] for s in samples) for key in samples[0] if key != "leep"}
            if "leep" in samples[0]:
                out[label]["leep"] = samples[0]["leep"]
        return out
    finally:
        broker.stop()


def zoo_once(broker: Broker, models: int, datasets: int) -> dict:
    """`models` × `datasets` runs of 2,000 × 100 float32 from one Python client process, 2 workers,
    1 aggregator: the publishing time, and the wait from its end to the last final score."""
    broker.restart()
    roles = [broker.role("worker") for _ in range(2)]
    broker.role("aggregate")
    wait_assigned(roles)
    count = models * datasets
    waiter = subprocess.Popen([BUILD / "leep", "scores", "--wait-count", str(count), "--timeout", "900", "--json",
                               *broker.common], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    published = json.loads(run(sys.executable, ROOT / "bench" / "zoo.py", f"127.0.0.1:{PORT}", "bench.",
                               "--models", models, "--datasets", datasets))
    output, _ = waiter.communicate()
    last_final = time.time()
    finals = {r["run"]: r for r in map(json.loads, output.splitlines()) if r["status"] == "final"}
    worst = max(abs(finals[run]["leep"] - leep) / abs(leep) for run, leep in published["reference"].items())
    broker.stop()
    return {"publish": published["published_s"], "wait": last_final - published["published_at"], "runs": count,
            "finals": len(finals), "worst_relative_difference": worst}


#: The feature zoo of issue 25: runs of 2,000 rows × 768 float32 features, Y = 10, half of them with
#: 2,000 × 100 softmax outputs beside the features and half with features alone.
FEATURE_ZOO = {"rows": 2000, "width": 768, "targets": 10, "classes": 100}


#: The broker's memory past which a feature-zoo run is abandoned, well inside this machine's.
FEATURE_ZOO_BROKER_LIMIT_MB = 12_000


def feature_zoo_once(broker: Broker, models: int, datasets: int, broker_limit_mb: float) -> dict:
    """`models` × `datasets` runs of the feature zoo from one Python client, 2 workers, 1
    aggregator: the publishing time, the wait from its end to the last final score, the
    pipeline's CPU seconds (workers and aggregator), and the runs' arithmetic floor timed alone
    right after, single-threaded, with NumPy's BLAS and LAPACK (`zoo.arithmetic_floor`). Past
    `broker_limit_mb` of broker memory the run is abandoned (PipelineFailed)."""
    broker.restart()
    roles = [broker.role("worker") for _ in range(2)]
    aggregator = broker.role("aggregate")
    wait_assigned(roles)
    count = models * datasets
    shape = ["--models", models, "--datasets", datasets, "--rows", FEATURE_ZOO["rows"], "--classes", FEATURE_ZOO["classes"],
             "--targets", FEATURE_ZOO["targets"], "--features", FEATURE_ZOO["width"], "--features-alone-every", 2]
    published, _, output, watch = publish_and_wait(
        broker, count, 1800, broker_limit_mb,
        lambda: json.loads(run(sys.executable, ROOT / "bench" / "zoo.py", f"127.0.0.1:{broker.port}", "bench.", *shape)))
    last_final = time.time()
    pipeline_cpu = sum(process_cpu_s(p) for p in roles) + process_cpu_s(aggregator)
    aggregator_cpu = process_cpu_s(aggregator)
    for process in roles:
        process.terminate()
        process.wait()
    partials = sum(int(re.search(r"partials=(\d+)", pathlib.Path(p.log).read_text()).group(1)) for p in roles)
    broker.stop()
    if watch.tripped:
        raise PipelineFailed(f"the broker's memory passed {broker_limit_mb:,.0f} MB (workers had flushed {partials} "
                             f"partials); run abandoned", broker_peak_rss_mb=watch.peak_mb)
    finals = {r["run"]: r for r in map(json.loads, output.splitlines()) if r["status"] == "final"}
    worst = max((abs(finals[run]["leep"] - leep) / abs(leep) for run, leep in published["reference"].items()
                 if run in finals), default=None)
    scored = sum(1 for r in finals.values() if all(r.get(k) is not None for k in ("logme", "sfda")))
    floor = json.loads(run(sys.executable, ROOT / "bench" / "zoo.py", "-", "-", *shape, "--floor",
                           env=dict(os.environ, OPENBLAS_NUM_THREADS="1")))
    return {"publish": published["published_s"], "wait": last_final - published["published_at"], "runs": count,
            "bytes": published["bytes"], "finals": len(finals), "scored": scored, "worst_relative_difference": worst,
            "pipeline_cpu": pipeline_cpu, "aggregator_cpu": aggregator_cpu, "partials": partials,
            "broker_peak_rss_mb": watch.peak_mb, "floor": floor["floor_s"]}


def feature_zoo_case(broker: Broker, reps: int, models: int) -> list:
    """`reps` runs of the feature zoo (`models` × 10 data sets); stops at the first that fails,
    as the same data fails the same way."""
    samples = []
    for _ in range(reps):
        try:
            samples.append(feature_zoo_once(broker, models, 10, broker_limit_mb=FEATURE_ZOO_BROKER_LIMIT_MB))
        except PipelineFailed as failure:
            samples.append({"failed": str(failure), "runs": models * 10, "broker_peak_rss_mb": failure.broker_peak_rss_mb})
            break
    return samples


def history_once(broker: Broker, closed: int, y: int, z: int, static_membership: bool = False) -> dict:
    """An aggregator with `closed` runs of Y × Z behind it is killed (-9); a new one takes over
    (with the same `group.instance.id` when `static_membership`). Reports the new one's memory
    and the time from the kill to the final score of the next run."""
    broker.restart()
    roles = [broker.role("worker") for _ in range(2)]
    member = ["--kafka-config", "group.instance.id=bench-aggregator-0"] if static_membership else []
    first = broker.role("aggregate", *member)
    wait_assigned(roles)
    if closed:
        waiter = subprocess.Popen([BUILD / "leep", "scores", "--wait-count", str(closed), "--timeout", "1800", "--json",
                                   *broker.common], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run(sys.executable, ROOT / "bench" / "zoo.py", f"127.0.0.1:{PORT}", "bench.", "--models", closed // 10,
            "--datasets", 10, "--rows", 20, "--classes", z, "--targets", y, "--no-reference")
        waiter.wait()
    first_rss = rss_mb(first)
    first.kill()
    first.wait()
    killed = time.time()
    second = broker.role("aggregate", *member)
    run(sys.executable, ROOT / "bench" / "zoo.py", f"127.0.0.1:{PORT}", "bench.", "--models", 1, "--datasets", 1,
        "--rows", 20, "--classes", z, "--targets", y, "--first-seed", 10 ** 6, "--no-reference")
    # The new owner's own log says when the run closed (reading the whole score topic to find
    # out would measure the reader, not the take-over).
    closed_line = re.compile(r'ts=(\S+) .*msg="run closed".*run=model-0@dataset-0@1000000 status=final')
    deadline = time.time() + 300
    while not (match := closed_line.search(pathlib.Path(second.log).read_text())) and time.time() < deadline:
        time.sleep(0.1)
    if not match:
        raise RuntimeError("the run after the take-over did not finish within 300 s")
    next_final = datetime.datetime.fromisoformat(match.group(1).replace("Z", "+00:00")).timestamp() - killed
    log = pathlib.Path(second.log).read_text()
    assigned = re.search(r'closed_runs="?(\d+)', log)
    result = {"closed": closed, "Y": y, "Z": z, "static": static_membership, "next_final_after_kill": next_final, "rss_mb": rss_mb(second),
              "first_owner_rss_mb": first_rss, "closed_ids_read": int(assigned.group(1)) if assigned else None}
    broker.stop()
    return result


def rss_mb(process: subprocess.Popen) -> float:
    status = pathlib.Path(f"/proc/{process.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def service_cases(reps: int) -> dict:
    broker = Broker()
    try:
        zoo = [zoo_once(broker, 30, 10) for _ in range(reps)]
        feature_zoo = feature_zoo_case(broker, reps, models=30)
        history = []
        for closed, y, z in [(0, 100, 1000), (1000, 100, 1000), (10000, 10, 100)]:
            history.append(history_once(broker, closed, y, z))
        history.append(history_once(broker, 10000, 10, 100, static_membership=True))
        return {"zoo": zoo, "feature_zoo": feature_zoo, "history": history}
    finally:
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--skip-score", action="store_true", help="keep the score results of the last run")
    parser.add_argument("--skip-service", action="store_true", help="skip the model-zoo and history cases")
    parser.add_argument("--only-service", action="store_true", help="run only the model-zoo and history cases")
    parser.add_argument("--skip-features", action="store_true", help="skip the feature-metrics case")
    parser.add_argument("--only-features", action="store_true", help="run only the feature-metrics case")
    parser.add_argument("--scaling", action="store_true",
                        help="also run the scaling sweeps (bench/scaling.py: n, Z, Y, D, 1 vs 2 workers; ~12 GB of data, ~10 min)")
    parser.add_argument("--only-scaling", action="store_true", help="run only the scaling sweeps")
    parser.add_argument("--only-feature-zoo", action="store_true", help="run only the feature zoo (issue 25)")
    parser.add_argument("--feature-zoo-models", type=int, default=30,
                        help="models of the feature zoo alone, × 10 data sets (default 30: 300 runs)")
    arguments = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    saved = DATA / "results.json"
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
               "reps": arguments.reps, "score": [], "pipeline": None,
               "blas": run(BUILD / "leep", "--version").splitlines()[-1].removeprefix("BLAS "),
               "load": os.getloadavg()}
    if arguments.only_features:
        print("features (LogME, H-scores, GBC, TransRate, SFDA) …", file=sys.stderr, flush=True)
        results["features"] = features_case(arguments.reps)
        (DATA / "features.json").write_text(json.dumps(results, indent=1, default=str))
        print(report_features(results["features"]))
        return
    if arguments.only_scaling:
        print(scaling_section(arguments.reps, "bench/run --only-scaling"))
        return
    if arguments.only_feature_zoo:
        print(f"feature zoo, {arguments.feature_zoo_models * 10} runs …", file=sys.stderr, flush=True)
        broker = Broker()
        try:
            samples = feature_zoo_case(broker, arguments.reps, arguments.feature_zoo_models)
        finally:
            broker.stop()
        (DATA / "feature_zoo.json").write_text(json.dumps(samples, indent=1, default=str))
        print("\n".join(report_feature_zoo(samples)))
        return
    if arguments.only_service:
        print("model zoo and history …", file=sys.stderr, flush=True)
        results["service"] = service_cases(arguments.reps)
        (DATA / "service.json").write_text(json.dumps(results, indent=1, default=str))
        print(report_service(results["service"]))
        return
    if arguments.skip_score and saved.exists():
        results["score"] = json.loads(saved.read_text())["score"]
    else:
        for name in arguments.cases.split(","):
            print(f"scoring {name} …", file=sys.stderr, flush=True)
            results["score"].append(score_case(name, arguments.reps))
            saved.write_text(json.dumps(results, indent=1, default=str))
    if not arguments.skip_features:
        print("features (LogME, H-scores, GBC, TransRate, SFDA) …", file=sys.stderr, flush=True)
        results["features"] = features_case(arguments.reps)
        saved.write_text(json.dumps(results, indent=1, default=str))
    if not arguments.skip_pipeline:
        print("pipeline (800 MB case) …", file=sys.stderr, flush=True)
        results["pipeline"] = pipeline_case(arguments.reps)
        saved.write_text(json.dumps(results, indent=1, default=str))
    if not arguments.skip_service:
        print("model zoo and history …", file=sys.stderr, flush=True)
        results["service"] = service_cases(arguments.reps)
        saved.write_text(json.dumps(results, indent=1, default=str))
    print(report(results))
    if results.get("features"):
        print(report_features(results["features"]))
    if results.get("service"):
        print(report_service(results["service"]))
    if arguments.scaling:  # last: it is the longest, and its section stands alone
        print(scaling_section(arguments.reps, "bench/run --scaling"))


def scaling_section(reps: int, command: str) -> str:
    """bench/scaling.py's sweeps (their results in .deps/bench/scaling.json) as its markdown section."""
    import scaling  # here, not at the top: it imports this file as a module of its own

    print("scaling sweeps (n, Z, Y, D, 1 vs 2 workers) …", file=sys.stderr, flush=True)
    return scaling.report_scaling(scaling.run_sweeps(reps, command=f"{command} --reps {reps}",
                                                     out=DATA / "scaling.json"))


def report_feature_zoo(samples: list) -> list[str]:
    """The feature zoo's table (issue 25, point 3), goal by goal."""
    if not samples:
        return []
    rows = FEATURE_ZOO
    title = (f"| feature zoo: {samples[0]['runs']} runs of {rows['rows']:,} × {rows['width']} float32 features, Y = {rows['targets']}, half with "
             f"{rows['rows']:,} × {rows['classes']} softmax outputs beside them, one Python client, 2 workers, 1 aggregator | median | runs |")
    lines = ["", title, "| --- | --- | --- |"]
    done = [z for z in samples if "failed" not in z]
    for failed in (z for z in samples if "failed" in z):
        lines.append(f"| failed | {failed['failed']} (broker peak {fmt(failed.get('broker_peak_rss_mb'), ',.0f')} MB) | |")
    if not done:
        return lines

    def median(key: str) -> float:
        return statistics.median(z[key] for z in done)

    def each(key: str) -> str:
        return " / ".join(f"{z[key]:.1f}" for z in done)

    publish, wait, cpu, floor = median("publish"), median("wait"), median("pipeline_cpu"), median("floor")
    lines += [
        f"| publishing (the client's own time) | {publish:.1f} s | {each('publish')} |",
        f"| end of publishing → last final score | {wait:.1f} s; goal ≤ 0.5 × publishing + floor = {0.5 * publish + floor:.1f} s: "
        f"{'met' if wait <= 0.5 * publish + floor else 'not met'} | {each('wait')} |",
        f"| pipeline CPU (2 workers + aggregator) | {cpu:.1f} s ({cpu / floor:.2f}× the floor; goal ≤ 1.3×: "
        f"{'met' if cpu <= 1.3 * floor else 'not met'}) | {each('pipeline_cpu')} |",
        f"| of which the aggregator | {median('aggregator_cpu'):.1f} s | {each('aggregator_cpu')} |",
        f"| the runs' arithmetic floor alone (NumPy, 1 thread: Gram matrices of every pass, the eigendecomposition, "
        f"TransRate's and SFDA's factors) | {floor:.1f} s | {each('floor')} |",
        f"| partials flushed; broker's peak memory | {median('partials'):.0f}; {median('broker_peak_rss_mb'):,.0f} MB | |",
        f"| final scores (with LogME and SFDA), worst LEEP difference to the float64 reference | "
        f"{min(z['finals'] for z in done)} of {done[0]['runs']} ({min(z['scored'] for z in done)}), "
        f"{fmt(max((z['worst_relative_difference'] or 0) for z in done), '.1e')} | |",
    ]
    return lines


def report_service(service: dict) -> str:
    zoo = service["zoo"]
    publish = statistics.median(z["publish"] for z in zoo)
    wait = statistics.median(z["wait"] for z in zoo)

    def each(key: str) -> str:
        return " / ".join(f"{z[key]:.2f}" for z in zoo)

    lines = ["", "| model zoo: 300 runs of 2,000 × 100 float32, one Python client, 2 workers, 1 aggregator | median | runs |",
             "| --- | --- | --- |",
             f"| publishing (the client's own time) | {publish:.2f} s | {each('publish')} |",
             f"| end of publishing → last final score | {wait:.2f} s ({wait / publish:.2f}× the publishing time) | "
             f"{each('wait')} |",
             f"| final scores, worst relative difference to the float64 reference | "
             f"{min(z['finals'] for z in zoo)} of 300, {max(z['worst_relative_difference'] for z in zoo):.1e} | |",
             *report_feature_zoo(service.get("feature_zoo") or []),
             "", "| closed runs behind the aggregator (Y × Z) | membership | closed ids read on take-over | new owner's memory (RSS) | "
             "first owner's memory before the kill | kill -9 → next run final (session timeout 6 s) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for h in service["history"]:
        lines.append(f"| {h['closed']:,} ({h['Y']} × {h['Z']:,}) | {'static' if h.get('static') else 'dynamic'} | "
                     f"{h['closed_ids_read']} | {h['rss_mb']:.1f} MB | {h['first_owner_rss_mb']:.1f} MB | "
                     f"{h['next_final_after_kill']:.1f} s |")
    return "\n".join(lines)


def report(results: dict) -> str:
    load = " / ".join(f"{v:.2f}" for v in results.get("load", ()))
    lines = [f"Machine: {results['machine']}; load average at the start {load or 'not recorded'}; "
             f"{results['reps']} measured repetitions after a warm-up; medians.", "",
             "| case | n × Z × Y | file | `leep score` (LEEP, NCE) | `--eep-accuracy` | thuml NumPy (a) | NumPy float64 (b) | floor (c): ours / NumPy's | GEMM (d): ours / NumPy's | (a)/ours | (b)/ours | ours/(c) | `--eep-accuracy`/((c)+(d)) | peak memory beyond the file | agrees to 1e-9 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results["score"]:
        ours, full = r["leep_score"][0], r["leep_score_accuracy"][0]
        a, b, c, d = r["thuml"][0], r["numpy_float64"][0], r["floor_best"], r["gemm_best"]
        lines.append(f"| {r['case']} | {r['n']:,} × {r['Z']:,} × {r['Y']} | {r['bytes'] / 1e6:,.0f} MB | {ours:.3f} s | "
                     f"{full:.3f} s | {a:.3f} s | {b:.3f} s | {r['floor'][0]:.3f} / {r['numpy_floor']['read_twice']:.3f} s | "
                     f"{r['gemm_ours']:.3f} / {r['numpy_floor']['gemm']:.3f} s | {a / ours:.1f}× | {b / ours:.1f}× | "
                     f"{ours / c:.2f}× | {full / (c + d):.2f}× | {r['peak_rss_beyond_file_mb']:.0f} MB | {'yes' if r['agrees'] else 'NO'} |")
    if results["score"]:
        names = list(results["score"][0]["phases"]["leep score"])
        lines += ["", "Where the time goes (`leep score --phase-times`, medians, seconds; \"start and exit\" is the whole "
                  "command's wall time less the phases):", "",
                  "| case | command | " + " | ".join(names) + " |", "| --- | --- | " + " | ".join("---" for _ in names) + " |"]
        for r in results["score"]:
            for command, phases in r["phases"].items():
                lines.append(f"| {r['case']} | {command} | " + " | ".join(f"{phases.get(name, 0):.3f}" for name in names) + " |")
        lines.append(f"\nBLAS: ours `{results.get('blas', '?')}`; NumPy's {results['score'][0]['numpy_floor']['blas']}.")
    p = results.get("pipeline")
    if p:
        raw, two, one = p["raw"], p["pipeline_2_workers"], p["pipeline_1_worker"]
        gb = raw["bytes"] / 1e9
        floor_i = raw["produce"] + 2 * raw["consume"]
        lines += ["", "| pipeline, 800 MB case | time | transport floor | ratio |", "| --- | --- | --- | --- |",
                  f"| (i) first record produced → final score, 2 workers | {two['first_to_final']:.2f} s | raw produce + 2 consumes {floor_i:.2f} s | {two['first_to_final'] / floor_i:.2f}× |",
                  f"| (ii) last record produced → final score, 2 workers | {two['last_to_final']:.2f} s | one raw consume {raw['consume']:.2f} s | {two['last_to_final'] / raw['consume']:.2f}× |",
                  f"| (i) with 1 worker | {one['first_to_final']:.2f} s | | {one['first_to_final'] / floor_i:.2f}× |",
                  "", "| workers | worker CPU s/GB pass 1 | worker CPU s/GB pass 2 | throughput (GB/s of predictions, first record → final) |",
                  "| --- | --- | --- | --- |"]
        for label, r in [("1", one), ("2", two)]:
            lines.append(f"| {label} | {r['cpu_pass1'] / gb:.2f} | {r['cpu_pass2'] / gb:.2f} | {gb / r['first_to_final']:.3f} |")
        thuml = next((s for s in results["score"] if s["case"] == "imagenet1k-200k"), None)
        if thuml:
            for label, r in [("2 workers", two), ("1 worker", one)]:
                difference = abs(r["leep"] - thuml["leep"]) / abs(thuml["leep"])
                lines.append(f"\nPipeline LEEP ({label}) against `leep score` on the same file: relative difference "
                             f"{difference:.1e} ({'within' if difference <= 1e-9 else 'OUTSIDE'} 1e-9).")
            lines.append(f"\nEnd to end, the pipeline (2 workers) takes {two['first_to_final'] / thuml['thuml'][0]:.2f}× "
                         f"the time of thuml's NumPy LEEP on one machine ({thuml['thuml'][0]:.2f} s).")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
