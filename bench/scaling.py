"""How `leep score` scales (issue 25): wall time and peak memory against n, Z, Y and D, and the
pipeline with 1 against 2 workers.

    .deps/venv/bin/python bench/scaling.py [--out FILE.json] [--reps 5] [--quick] [--keep] [--plan]
    bench/run --only-scaling          (or --scaling, after the other cases)

Every `leep score` point is the whole command (process start included), timed from the parent:
one warm-up run (which also puts the file in the page cache), then `--reps` measured runs,
medians; each run's peak RSS (/usr/bin/time) and CPU (os.wait4) are its own. The sweeps:

* n: base n × 1, × 4, × 16 at Z = 1,000, Y = 100, float32, base n chosen so that the × 16 file
  is larger than a quarter of the machine's memory (MemTotal);
* Z: 10 … 21,843 at fixed n = 20,000, Y = 100 (the file grows with Z);
* Y: 2 … 1,000 at n = 20,000, Z = 1,000, with and without --eep-accuracy (LEEP's pass 2 is
  one dot product a row whatever Y; EEP accuracy's is Y of them, an n·Z·Y product);
* D: 64 … 4,096 for `leep score --features` (every metric) at n = 20,000, Y = 10;
* the pipeline on the 200,000 × 1,000 × 100 file through a local broker on its own port and
  topic prefix (SCALING_PORT, 'scal.'), 1 and 2 workers.

Then a law per sweep: the log-log slope of time against the swept size (overall and segment by
segment, and where it bends), and for the file-size sweeps the fixed seconds and seconds per GB
of a straight-line fit. Data is generated into .deps/bench/scaling/ with bench/generate.py's
generators; files over 1 GB are deleted at the end unless --keep. `--quick` runs tiny sizes (a
minute) to check the script end to end; its numbers are process start, not scaling."""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import bench  # noqa: E402  (the same broker, pipeline and helpers as the other cases)
from generate import generate, generate_features  # noqa: E402

SCALING_DATA = bench.DATA / "scaling"
#: Not bench's port or prefix, so this can run while a bench/run (or another engineer's broker) runs.
SCALING_PORT = int(os.environ.get("LEEP_SCALING_BROKER_PORT", "19293"))
SCALING_PREFIX = "scal."
#: A point whose warm-up took longer than this gets at most LONG_RUN_REPS measured runs (bench.py's
#: rule for its slow cases): the D = 4,096 features run takes about a minute here, and at that
#: length the noise of the shared machine is a few per cent.
LONG_RUN_S = 30.0
LONG_RUN_REPS = 3
#: Files above this are deleted after the sweep (unless --keep): the n sweep alone writes ~8 GB.
DELETE_ABOVE_BYTES = 10**9
#: Consecutive log-log segment slopes differing by more than this count as a bend.
BEND = 0.25


@dataclass(frozen=True)
class Plan:
    """The sizes of one sweep. `n_base` × `n_factors` rows at `n_shape` = (Z, Y); the Z, Y and D
    sweeps share `fixed_n` rows; `pipeline` is (n, Z, Y)."""
    n_base: int
    n_factors: tuple[int, ...]
    n_shape: tuple[int, int]
    fixed_n: int
    zs: tuple[int, ...]
    z_targets: int
    ys: tuple[int, ...]
    y_sources: int
    ds: tuple[int, ...]
    d_targets: int
    pipeline: tuple[int, int, int]


def mem_total_bytes() -> int:
    text = pathlib.Path("/proc/meminfo").read_text()
    return int(next(l for l in text.splitlines() if l.startswith("MemTotal:")).split()[1]) * 1024


def base_rows(z: int, factor: int, step: int = 10_000) -> int:
    """The smallest multiple of `step` rows whose × `factor` float32 file exceeds MemTotal / 4:
    a file that is no longer a small share of memory (its mapped pages count in the RSS and
    compete with the page cache), so that a memory-bound bend in the n line would show."""
    return math.ceil((mem_total_bytes() / 4 / (factor * z * 4) + 1) / step) * step


def make_plan(quick: bool) -> Plan:
    if quick:  # every code path, tiny files: a check that the script works, not a measurement
        return Plan(n_base=2_000, n_factors=(1, 4, 16), n_shape=(100, 10), fixed_n=2_000, zs=(10, 100, 1_000),
                    z_targets=10, ys=(2, 10, 100), y_sources=100, ds=(16, 64, 256), d_targets=10,
                    pipeline=(20_000, 100, 10))
    return Plan(n_base=base_rows(1_000, 16), n_factors=(1, 4, 16), n_shape=(1_000, 100), fixed_n=20_000,
                zs=(10, 100, 1_000, 5_000, 21_843), z_targets=100, ys=(2, 10, 100, 1_000), y_sources=1_000,
                ds=(64, 256, 1_024, 4_096), d_targets=10, pipeline=(200_000, 1_000, 100))


def predictions_name(n: int, z: int, y: int) -> str:
    return f"n{n}-z{z}-y{y}"  # generate() reuses files by name: the name carries the whole shape


def features_name(n: int, d: int, y: int) -> str:
    return f"features-n{n}-d{d}-y{y}"


def planned_files(plan: Plan) -> list[tuple[str, int]]:
    """Every file the plan generates, with its size in bytes (labels left out: n·8 bytes)."""
    shapes = [(plan.n_base * f, *plan.n_shape) for f in plan.n_factors]
    shapes += [(plan.fixed_n, z, plan.z_targets) for z in plan.zs]
    shapes += [(plan.fixed_n, plan.y_sources, y) for y in plan.ys]
    shapes.append(plan.pipeline)
    files = {predictions_name(*shape): shape[0] * shape[1] * 4 for shape in shapes}  # shared points once
    files.update({features_name(plan.fixed_n, d, plan.d_targets): plan.fixed_n * d * 4 for d in plan.ds})
    return list(files.items())


def measure_once(command: list) -> dict:
    """One run of `command`, timed from before the fork to its reaping. Its peak RSS comes from
    /usr/bin/time (%M), not from this process's os.wait4 or RUSAGE_CHILDREN: Linux keeps a
    process's peak across exec, and a child forked (or vforked) from this Python starts with
    this process's pages — with NumPy and the generated slices loaded, a 24 MB `leep --version`
    reads as 480 MB. /usr/bin/time is small, so the command it forks starts small. CPU seconds
    come from os.wait4 on /usr/bin/time (it includes the command it reaped), to the microsecond.
    Output goes to files, not pipes, so nothing blocks before the wait."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(mode="r") as peak:
        start = time.perf_counter()
        process = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", peak.name, *map(str, command)],
                                   stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
        peak_kb = peak.read().split()[-1]
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} {command[1]} failed ({process.returncode}): {stderr[-2000:]}")
    phases = {line.split()[1]: float(line.split()[2]) for line in stderr.splitlines() if line.startswith("phase ")}
    return {"seconds": wall, "peak_rss_mb": int(peak_kb) * 1024 / 1e6, "cpu_s": usage.ru_utime + usage.ru_stime,
            "phases": phases, "output": json.loads(stdout)}


def measure(command: list, reps: int) -> dict:
    """A warm-up, then `reps` runs (at most LONG_RUN_REPS after a warm-up over LONG_RUN_S): median
    wall, CPU and phases (`--phase-times`), the largest peak RSS, the first run's JSON output."""
    command = [*command, "--json", "--phase-times"]
    warm = measure_once(command)
    if warm["seconds"] > LONG_RUN_S:
        reps = min(reps, LONG_RUN_REPS)
    runs = [measure_once(command) for _ in range(reps)]
    return {"seconds": statistics.median(r["seconds"] for r in runs), "samples": [r["seconds"] for r in runs],
            "cpu_s": statistics.median(r["cpu_s"] for r in runs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "phases": {name: statistics.median(r["phases"].get(name, 0.0) for r in runs) for name in runs[0]["phases"]},
            "output": runs[0]["output"]}


class Sweep:
    """Generates each point's files (reused when present), measures it, and remembers the large
    ones for deletion."""

    def __init__(self, reps: int):
        self.reps = reps
        self.files: list[pathlib.Path] = []
        SCALING_DATA.mkdir(parents=True, exist_ok=True)

    def predictions(self, n: int, z: int, y: int) -> tuple[pathlib.Path, pathlib.Path]:
        paths = generate(SCALING_DATA, predictions_name(n, z, y), (n, z, y))
        self.files += paths
        return paths

    def score(self, n: int, z: int, y: int, eep_accuracy: bool = False) -> dict:
        predictions, labels = self.predictions(n, z, y)
        print(f"  leep score {n:,} × {z:,} × {y}{' --eep-accuracy' if eep_accuracy else ''} …",
              file=sys.stderr, flush=True)
        command = [bench.BUILD / "leep", "score", "--predictions", predictions, "--labels", labels]
        point = {"n": n, "Z": z, "Y": y, "bytes": predictions.stat().st_size,
                 **measure([*command, *(["--eep-accuracy"] if eep_accuracy else [])], self.reps)}
        point["leep"] = point.pop("output")["leep"]
        return point

    def features(self, n: int, d: int, y: int) -> dict:
        features, labels = generate_features(SCALING_DATA, (features_name(n, d, y), n, d, y))
        self.files += [features, labels]
        print(f"  leep score --features {n:,} × {d:,} × {y} …", file=sys.stderr, flush=True)
        point = {"n": n, "D": d, "Y": y, "bytes": features.stat().st_size,
                 **measure([bench.BUILD / "leep", "score", "--features", features, "--labels", labels], self.reps)}
        output = point.pop("output")
        # TransRate is unscored past Y·D² = 2^26 (`leep score --help`): a bend can be a metric dropping out.
        point["unscored"] = sorted(output.get("unscored") or {})
        return point

    def delete_large(self) -> list[str]:
        gone = []
        for path in dict.fromkeys(self.files):
            if path.exists() and path.stat().st_size > DELETE_ABOVE_BYTES:
                path.unlink()
                gone.append(path.name)
        return gone


def pipeline_sweep(sweep: Sweep, n: int, z: int, y: int, reps: int) -> dict:
    """1 and 2 workers, 1 aggregator, a fresh local broker per run (bench.pipeline_once): a
    warm-up, then at most 3 runs each (a run is seconds of broker work, and the broker restarts
    every time). Per-GB figures are over the predictions file."""
    predictions, labels = sweep.predictions(n, z, y)
    gigabytes = predictions.stat().st_size / 1e9
    local = json.loads(bench.run(bench.BUILD / "leep", "score", "--predictions", predictions, "--labels", labels,
                                 "--json"))["leep"]
    broker = bench.Broker(port=SCALING_PORT, prefix=SCALING_PREFIX, logs=SCALING_DATA)
    out = {"n": n, "Z": z, "Y": y, "bytes": predictions.stat().st_size, "port": SCALING_PORT, "workers": {}}
    try:
        for workers in (1, 2):
            print(f"  pipeline {n:,} × {z:,} × {y}, {workers} worker(s) …", file=sys.stderr, flush=True)
            bench.pipeline_once(broker, predictions, labels, workers)  # warm-up
            samples = [bench.pipeline_once(broker, predictions, labels, workers) for _ in range(max(1, min(reps, 3)))]

            def median(key):
                return statistics.median(s[key] for s in samples)

            out["workers"][str(workers)] = {
                "runs": len(samples), "first_to_final": median("first_to_final"),
                "first_to_final_samples": [s["first_to_final"] for s in samples],
                "last_to_final": median("last_to_final"),
                "cpu_pass1_s_per_gb": median("cpu_pass1") / gigabytes,
                "cpu_pass2_s_per_gb": median("cpu_pass2") / gigabytes,
                "worker_process_cpu_s_per_gb": median("worker_process_cpu") / gigabytes,
                "aggregator_cpu_s": median("aggregator_cpu"),
                "worker_peak_rss_mb": max(s["worker_peak_rss_mb"] for s in samples),
                "aggregator_peak_rss_mb": max(s["aggregator_peak_rss_mb"] for s in samples),
                "broker_peak_rss_mb": max(s["broker_peak_rss_mb"] for s in samples),
                "vs_leep_score": max(bench.relative(s["leep"], local) for s in samples)}
    finally:
        broker.stop()
    return out


def loglog(xs: list[float], ys: list[float]) -> dict:
    """The exponent of ys against xs: the least-squares slope of log y on log x, the slope of
    each segment between neighbouring points, and the bend — the point where neighbouring
    segments' slopes differ most, when by more than BEND (a fixed cost giving way to a
    size-bound one, or one term overtaking another)."""
    lx, ly = np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float))
    segments = [float(s) for s in np.diff(ly) / np.diff(lx)]
    bend = None
    if len(segments) >= 2:
        changes = np.abs(np.diff(segments))
        at = int(np.argmax(changes))
        if changes[at] > BEND:
            bend = {"at": xs[at + 1], "from": segments[at], "to": segments[at + 1]}
    return {"slope": float(np.polyfit(lx, ly, 1)[0]), "segments": segments, "bend": bend}


def per_gb(points: list[dict]) -> dict:
    """A straight line through (GB, seconds): the fixed seconds (process start, the parts that
    do not grow with the file) and the seconds per further GB."""
    gigabytes = [p["bytes"] / 1e9 for p in points]
    slope, intercept = np.polyfit(gigabytes, [p["seconds"] for p in points], 1)
    return {"fixed_s": float(intercept), "s_per_gb": float(slope)}


def fit_laws(results: dict) -> dict:
    laws = {}
    if results.get("n"):
        points = results["n"]
        laws["n"] = {**loglog([p["n"] for p in points], [p["seconds"] for p in points]), **per_gb(points),
                     "memory": loglog([p["n"] for p in points], [p["peak_rss_mb"] for p in points])}
    if results.get("Z"):
        points = results["Z"]
        laws["Z"] = {**loglog([p["Z"] for p in points], [p["seconds"] for p in points]), **per_gb(points)}
    if results.get("Y"):
        points = results["Y"]
        yz = [p["Y"] * p["Z"] for p in points]
        laws["Y"] = {**loglog(yz, [p["seconds"] for p in points]),
                     "eep_accuracy": loglog(yz, [p["eep_accuracy"]["seconds"] for p in points])}
    if results.get("D"):
        points = results["D"]
        laws["D"] = {**loglog([p["D"] for p in points], [p["seconds"] for p in points]),
                     "memory": loglog([p["D"] for p in points], [p["peak_rss_mb"] for p in points])}
    return laws


def cpu_model() -> str:
    """The CPU as /proc/cpuinfo names it, with family/model and the vector extensions that
    decide leep's kernels (they differ between machines lent under the same name)."""
    info = {}
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
        if not line.strip():
            break  # the first processor's block is enough
    flags = set(info.get("flags", "").split())
    vectors = ", ".join(f for f in ("avx2", "fma", "avx512f") if f in flags) or "no AVX2"
    name = info.get("model name", platform.processor() or platform.machine())
    return f"{name}, family {info.get('cpu family', '?')} model {info.get('model', '?')} ({vectors})"


def run_sweeps(reps: int = 5, quick: bool = False, keep: bool = False, command: str = "",
               out: pathlib.Path | None = None) -> dict:
    """Every sweep of the plan, in order, the results so far written to `out` after each (a late
    failure keeps the earlier sweeps); the large files are deleted even when a sweep fails."""
    if not (bench.BUILD / "leep").exists():
        # ops/broker would build it itself (ops/leep): a build must be asked for, not implied.
        raise SystemExit(f"no {bench.BUILD / 'leep'}: build it first (swift build -c release --product leep)")
    plan = make_plan(quick)
    results = {"started": utc_now(), "command": command, "quick": quick, "reps": reps, "plan": asdict(plan),
               "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "mem_total_gib": mem_total_bytes() / 2**30},
               "blas": bench.run(bench.BUILD / "leep", "--version").splitlines()[-1].removeprefix("BLAS "),
               "tree": bench.tree_state(), "load_start": os.getloadavg()}
    sweep = Sweep(reps)
    z, y = plan.n_shape

    def y_point(targets: int) -> dict:
        point = sweep.score(plan.fixed_n, plan.y_sources, targets)
        point["eep_accuracy"] = sweep.score(plan.fixed_n, plan.y_sources, targets, eep_accuracy=True)
        return point

    sweeps = {"n": lambda: [sweep.score(plan.n_base * f, z, y) for f in plan.n_factors],
              "Z": lambda: [sweep.score(plan.fixed_n, zs, plan.z_targets) for zs in plan.zs],
              "Y": lambda: [y_point(ys) for ys in plan.ys],
              "D": lambda: [sweep.features(plan.fixed_n, d, plan.d_targets) for d in plan.ds],
              "pipeline": lambda: pipeline_sweep(sweep, *plan.pipeline, reps)}
    try:
        for name, function in sweeps.items():
            print(f"scaling: {name} …", file=sys.stderr, flush=True)
            results[name] = function()
            if out:
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(results, indent=1, default=str))
    finally:
        if not keep:
            results["deleted"] = sweep.delete_large()
    results["load_end"] = os.getloadavg()
    results["finished"] = utc_now()
    results["laws"] = fit_laws(results)
    if out:
        out.write_text(json.dumps(results, indent=1, default=str))
    return results


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")


def bend_text(law: dict, unit: str) -> str:
    bend = law["bend"]
    if not bend:
        return "no bend"
    return f"bends at {unit}{bend['at']:,} (slope {bend['from']:.2f} below, {bend['to']:.2f} above)"


def segments_text(law: dict) -> str:
    return " → ".join(f"{s:.2f}" for s in law["segments"])


def nearest_power(slope: float) -> str:
    """The regime a D slope points at: n·D (reading), n·D² (the DSYRK passes) or D³ (the
    eigendecompositions and inverses)."""
    return {0: "fixed cost", 1: "∝ D", 2: "∝ D² (the n·D² passes)", 3: "∝ D³ (the D×D decompositions)"}[
        min(3, max(0, round(slope)))]


def report_scaling(results: dict) -> str:
    """The markdown section for docs/benchmarks.md: the sweeps' tables and the fitted laws."""
    machine = results["machine"]
    load = " / ".join(f"{v:.2f}" for v in results["load_start"])
    load_end = " / ".join(f"{v:.2f}" for v in results.get("load_end", ()))
    tree = results.get("tree", {})
    lines = [f"## Scaling: `leep score` against n, Z, Y and D, and 1 against 2 workers (run: {results['started']}"
             f"{'–' + results['finished'][11:] if results.get('finished') else ''} UTC, `{results['command']}`"
             f"{', QUICK: tiny sizes, process start only' if results['quick'] else ''})", "",
             f"{machine['cpu']}, {machine['cores']} cores, {machine['mem_total_gib']:.1f} GiB; load average "
             f"{load} at the start, {load_end or 'not recorded'} at the end (the machine is shared). BLAS "
             f"`{results.get('blas', '?')}`. Built from {tree.get('commit', '?')}"
             + (f" with Sources/ modified ({', '.join(tree['sources_modified'])})"
                if tree.get("sources_modified") else "")
             + f". Each point is the whole command (process start included), {results['reps']} measured runs "
             f"after a warm-up (at most {LONG_RUN_REPS} when the warm-up took over {LONG_RUN_S:.0f} s), medians, "
             f"page cache warm; peak RSS of each run (/usr/bin/time), the mapped file's pages included "
             f"(\"beyond the file\" subtracts them).",
             "", f"Reproduce: `{results['command']}`."]

    def score_rows(points, first_cell):
        return [f"| {first_cell(p)} | {p['bytes'] / 1e6:,.1f} MB | {p['seconds']:.3f} s | "
                f"{p['seconds'] / (p['bytes'] / 1e9):.2f} s/GB | {p['cpu_s']:.2f} s | {p['peak_rss_mb']:,.0f} MB | "
                f"{p['peak_rss_mb'] - p['bytes'] / 1e6:,.0f} MB | {p['phases'].get('pass1', 0):.3f} / "
                f"{p['phases'].get('pass2', 0):.3f} s |" for p in points]

    header = ("| file | `leep score` | per GB | CPU | peak RSS | beyond the file | pass 1 / pass 2 |",
              "| --- | --- | --- | --- | --- | --- | --- |")
    laws = results.get("laws", {})
    if results.get("n"):
        law = laws["n"]
        lines += ["", f"**n** (Z × Y = {results['n'][0]['Z']:,} × {results['n'][0]['Y']}, float32; the largest file "
                  f"is over a quarter of MemTotal):", "",
                  "| n " + header[0], "| --- " + header[1],
                  *score_rows(results["n"], lambda p: f"{p['n']:,}"),
                  "", f"Time ∝ n^{law['slope']:.2f} (segments {segments_text(law)}; {bend_text(law, 'n = ')}); "
                  f"a line through the points: {law['fixed_s']:.3f} s fixed + {law['s_per_gb']:.3f} s/GB. "
                  f"Peak RSS ∝ n^{law['memory']['slope']:.2f}."]
    if results.get("Z"):
        law = laws["Z"]
        lines += ["", f"**Z** (n = {results['Z'][0]['n']:,} fixed, Y = {results['Z'][0]['Y']}; the file grows with Z):",
                  "", "| Z " + header[0], "| --- " + header[1],
                  *score_rows(results["Z"], lambda p: f"{p['Z']:,}"),
                  "", f"Time ∝ Z^{law['slope']:.2f} (segments {segments_text(law)}; {bend_text(law, 'Z = ')}); "
                  f"{law['fixed_s']:.3f} s fixed + {law['s_per_gb']:.3f} s/GB."]
    if results.get("Y"):
        law = laws["Y"]
        lines += ["", f"**Y** (n × Z = {results['Y'][0]['n']:,} × {results['Y'][0]['Z']:,}, one file size):", "",
                  "| Y | Y·Z | `leep score` | its peak RSS beyond the file | `--eep-accuracy` | its pass 2 | "
                  "its peak RSS beyond the file |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for p in results["Y"]:
            e, mb = p["eep_accuracy"], p["bytes"] / 1e6
            lines.append(f"| {p['Y']:,} | {p['Y'] * p['Z']:,} | {p['seconds']:.3f} s | {p['peak_rss_mb'] - mb:,.0f} MB | "
                         f"{e['seconds']:.3f} s | {e['phases'].get('pass2', 0):.3f} s | {e['peak_rss_mb'] - mb:,.0f} MB |")
        lines += ["", f"`leep score`: time ∝ (Y·Z)^{law['slope']:.2f} (segments {segments_text(law)}; "
                  f"{bend_text(law, 'Y·Z = ')}). `--eep-accuracy`: ∝ (Y·Z)^{law['eep_accuracy']['slope']:.2f} "
                  f"(segments {segments_text(law['eep_accuracy'])}; {bend_text(law['eep_accuracy'], 'Y·Z = ')})."]
    if results.get("D"):
        law = laws["D"]
        lines += ["", f"**D** (`leep score --features`, every metric; n = {results['D'][0]['n']:,}, "
                  f"Y = {results['D'][0]['Y']}):", "",
                  "| D | file | `leep score --features` | CPU | peak RSS | features phase | unscored |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for p in results["D"]:
            lines.append(f"| {p['D']:,} | {p['bytes'] / 1e6:,.1f} MB | {p['seconds']:.2f} s | {p['cpu_s']:.1f} s | "
                         f"{p['peak_rss_mb']:,.0f} MB | {p['phases'].get('features', 0):.2f} s | "
                         f"{', '.join(p['unscored']) or '—'} |")
        widths = [p["D"] for p in results["D"]]
        segments = ", ".join(f"{a:,}→{b:,}: {s:.2f} ({nearest_power(s)})"
                             for a, b, s in zip(widths, widths[1:], law["segments"]))
        lines += ["", f"Time ∝ D^{law['slope']:.2f} overall; by segment {segments}; {bend_text(law, 'D = ')}. "
                  f"Peak RSS ∝ D^{law['memory']['slope']:.2f}."]
    p = results.get("pipeline")
    if p:
        lines += ["", f"**Pipeline** ({p['n']:,} × {p['Z']:,} × {p['Y']}, {p['bytes'] / 1e6:,.0f} MB; local broker on "
                  f"port {p['port']}, memory storage, restarted for every run; 1 aggregator):", "",
                  "| workers | first record → final | last record → final | worker CPU s/GB pass 1 / pass 2 | "
                  "worker processes' CPU s/GB | aggregator CPU | peak RSS worker / aggregator / broker | "
                  "LEEP vs `leep score` |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for workers, q in p["workers"].items():
            lines.append(f"| {workers} | {q['first_to_final']:.2f} s | {q['last_to_final']:.2f} s | "
                         f"{q['cpu_pass1_s_per_gb']:.2f} / {q['cpu_pass2_s_per_gb']:.2f} | "
                         f"{q['worker_process_cpu_s_per_gb']:.2f} | {q['aggregator_cpu_s']:.2f} s | "
                         f"{q['worker_peak_rss_mb']:,.0f} / {q['aggregator_peak_rss_mb']:,.0f} / "
                         f"{q['broker_peak_rss_mb']:,.0f} MB | {q['vs_leep_score']:.1e} |")
        one, two = p["workers"].get("1"), p["workers"].get("2")
        if one and two:
            lines.append(f"\n2 workers take {two['first_to_final'] / one['first_to_final']:.2f}× the time of 1 "
                         f"(first record → final).")
    if results.get("deleted"):
        lines.append(f"\nDeleted after the run (over 1 GB): {', '.join(results['deleted'])}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=bench.DATA / "scaling.json", help="results (JSON)")
    parser.add_argument("--reps", type=int, default=None, help="measured runs per point (default 5, --quick 3)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script end to end in a minute")
    parser.add_argument("--keep", action="store_true", help="keep the files over 1 GB")
    parser.add_argument("--plan", action="store_true", help="print the sizes and files the sweep would make, and stop")
    arguments = parser.parse_args(argv)
    plan = make_plan(arguments.quick)
    if arguments.plan:
        files = planned_files(plan)
        print(json.dumps(asdict(plan)))
        for name, size in files:
            print(f"{name}: {size / 1e9:.3f} GB")
        print(f"total {sum(s for _, s in files) / 1e9:.2f} GB; MemTotal / 4 = {mem_total_bytes() / 4e9:.2f} GB")
        return
    command = "bench/scaling.py" + (" --quick" if arguments.quick else "") + \
        (f" --reps {arguments.reps}" if arguments.reps else "")
    results = run_sweeps(arguments.reps or (3 if arguments.quick else 5), arguments.quick, arguments.keep,
                         ".deps/venv/bin/python " + command, arguments.out)
    print(report_scaling(results))


if __name__ == "__main__":
    main()
