"""leepstream's benchmark: every comparison of issue 5 in one run, on the same data.

    bench/run [--reps 5] [--cases a,b] [--skip-pipeline]

For each case: `leep score` against thuml's NumPy LEEP (bench/thuml_leep.py), the float64 NumPy
reference (Tests/reference) and the floor (two plain read passes over the mapped file,
bench/Floor). For 50,000 × 2,048 float32 features: `leep score --features` (LogME, H-score,
shrinkage H-score) against thuml's NumPy code (bench/thuml_features.py) and one DSYRK pass. For the 800 MB case, the pipeline on a local broker with 2 workers against raw
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
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "Tests" / "reference"))
from feature_reference import feature_scores  # noqa: E402
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
    result["agrees"] = all(abs(mine[key] - expected[key]) <= 1e-9 * abs(expected[key])
                           for mine in (ours, ours_accuracy) for key in ("leep", "nce")) and \
        abs(ours_accuracy["eep_accuracy"] - expected["eep_accuracy"]) <= 1e-12
    result["leep"] = ours["leep"]
    return result


def features_case(reps: int) -> dict:
    """`leep score --features` (LogME, H-score, shrinkage H-score) on 50,000 × 2,048 float32 against
    thuml's published NumPy algorithms (bench/thuml_features.py, its own process: load, the three
    metrics, its peak memory), the float64 reference (agreement, once) and the floor: one DSYRK
    pass over the file (`leep-bench-floor dsyrk FILE`, which prints its seconds), when built."""
    features, labels = generate_features(DATA)
    name, n, d, y = FEATURE_CASE
    size = features.stat().st_size
    result = {"case": name, "n": n, "D": d, "Y": y, "bytes": size}
    leep_cli = [BUILD / "leep", "score", "--features", features, "--labels", labels, "--json"]
    result["leep_score"] = timed(lambda: run(*leep_cli), reps)
    ours = json.loads(run(*leep_cli))
    peak = subprocess.run(["/usr/bin/time", "-f", "%M", *map(str, leep_cli)], capture_output=True, text=True)
    result["peak_rss_mb"] = int(peak.stderr.strip().splitlines()[-1]) * 1024 / 1e6
    # thuml's code takes minutes here: at most 3 runs (the page cache is warm from ours).
    thuml_runs = [json.loads(run(sys.executable, ROOT / "bench" / "thuml_features.py", features, labels))
                  for _ in range(max(1, min(reps, 3)))]
    result["thuml"] = (statistics.median(r["seconds"] for r in thuml_runs), [r["seconds"] for r in thuml_runs])
    result["thuml_peak_rss_mb"] = max(r["peak_rss_mb"] for r in thuml_runs)
    result["pipeline"] = features_pipeline(features, labels, reps, ours)
    floor = BUILD / "leep-bench-floor"
    try:
        samples = [float(run(floor, "dsyrk", features).split()[0]) for _ in range(reps + 1)][1:]
        result["floor"] = (statistics.median(samples), samples)
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        result["floor"] = None  # not built, or built without the dsyrk mode yet
    expected = feature_scores(np.load(features), np.load(labels))
    keys = ("logme", "hscore", "hscore_shrinkage")
    result["ours"] = {key: ours.get(key) for key in keys}
    result["reference"] = {key: expected[key] for key in keys}
    result["thuml_scores"] = {key: thuml_runs[0][key] for key in keys}
    result["agrees"] = all(isinstance(ours.get(key), (int, float)) and
                           abs(ours[key] - expected[key]) <= 1e-8 * abs(expected[key]) for key in keys)
    result["thuml_vs_reference"] = max(abs(thuml_runs[0][key] - expected[key]) / abs(expected[key]) for key in keys)
    return result


def features_pipeline(features, labels, reps: int, local: dict) -> dict:
    """The same features through the pipeline (local broker, 2 workers, 1 aggregator), with
    10-class softmax outputs beside them (a run carries both): time from the first record
    produced to the final score, worker CPU seconds per GB of chunk data, and whether the
    pipeline's scores equal `leep score --features` on the same file to 1e-9."""
    name, n, _, y = FEATURE_CASE
    predictions = DATA / f"{name}.predictions.npy"
    if not predictions.exists():
        rng = np.random.default_rng(17)
        np.save(predictions, rng.dirichlet(np.full(10, 0.3), size=n).astype(np.float32))
    broker = Broker()
    try:
        pipeline_once(broker, predictions, labels, 2, features)  # warm-up
        samples = [pipeline_once(broker, predictions, labels, 2, features) for _ in range(max(1, min(reps, 3)))]
    finally:
        broker.stop()
    gigabytes = (pathlib.Path(features).stat().st_size + predictions.stat().st_size) / 1e9
    keys = ("logme", "hscore", "hscore_shrinkage")
    return {"first_to_final": statistics.median(s["first_to_final"] for s in samples),
            "last_to_final": statistics.median(s["last_to_final"] for s in samples),
            "cpu_s_per_gb": statistics.median((s["cpu_pass1"] + s["cpu_pass2"]) / gigabytes for s in samples),
            "gigabytes": gigabytes,
            "agrees": all(abs(s[key] - local[key]) <= 1e-9 * abs(local[key]) for s in samples for key in keys)}


def report_features(r: dict) -> str:
    p = r["pipeline"]
    ours = r["leep_score"][0]
    thuml = r["thuml"][0]
    floor = r["floor"][0] if r.get("floor") else None
    floor_cell = f"{floor:.2f} s" if floor else "—"
    ratio_cell = f"{ours / floor:.1f}×" if floor else "—"
    return "\n".join([
        "", "| features case | n × D × Y | file | `leep score --features` | its peak memory | thuml NumPy (a) | (a)'s peak memory | "
        "floor: one DSYRK pass (c) | (a)/ours | ours/(c) | ours agree with the float64 reference to 1e-8 | thuml vs reference, worst relative |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {r['case']} | {r['n']:,} × {r['D']:,} × {r['Y']} | {r['bytes'] / 1e6:,.0f} MB | {ours:.2f} s | {r['peak_rss_mb']:,.0f} MB | "
        f"{thuml:.2f} s | {r['thuml_peak_rss_mb']:,.0f} MB | {floor_cell} | {thuml / ours:.1f}× | {ratio_cell} | "
        f"{'yes' if r['agrees'] else 'NO'} | {r['thuml_vs_reference']:.1e} |",
        "", "| pipeline, 2 workers, same features + 10-class softmax | data | first record → final score | last record → final | "
        "worker CPU | scores equal `leep score --features` to 1e-9 |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| {r['case']} | {p['gigabytes']:.2f} GB | {p['first_to_final']:.2f} s | {p['last_to_final']:.2f} s | "
        f"{p['cpu_s_per_gb']:.1f} s/GB | {'yes' if p['agrees'] else 'NO'} |"])


class Broker:
    """The local broker on its own port, fresh (memory storage) for each repetition."""

    def __init__(self):
        self.env = dict(os.environ, LEEP_BROKER_PORT=str(PORT), LEEP_TOPIC_PREFIX="bench.")
        self.common = ["--brokers", f"127.0.0.1:{PORT}", "--topic-prefix", "bench.",
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
        log = open(DATA / f"{args[0]}-{len(self.processes)}.log", "w")
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


def pipeline_once(broker: Broker, predictions, labels, workers: int, features=None) -> dict:
    broker.restart()
    roles = [broker.role("worker") for _ in range(workers)]
    broker.role("aggregate")
    wait_assigned(roles)
    start = time.perf_counter()
    waiter = subprocess.Popen([BUILD / "leep", "scores", "--wait-count", "1", "--timeout", "900", "--json",
                               *broker.common], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    run(BUILD / "leep", "produce", "--model", "bench", "--dataset", "bench", "--predictions", predictions,
        "--labels", labels, *(["--features", features] if features else []), *broker.common)
    produced = time.perf_counter()
    output, _ = waiter.communicate()
    final = time.perf_counter()
    for process in roles:  # SIGTERM: each logs its CPU time per pass on the way out
        process.terminate()
        process.wait()
    cpu1 = cpu2 = 0.0
    for process in roles:
        text = pathlib.Path(process.log).read_text()
        cpu1 += float(re.search(r"cpu_pass1_s=([0-9.e-]+)", text).group(1))
        cpu2 += float(re.search(r"cpu_tasks_s=([0-9.e-]+)", text).group(1))
    broker.stop()
    record = json.loads(output.splitlines()[-1])
    return {"first_to_final": final - start, "last_to_final": final - produced, "produce": produced - start,
            "cpu_pass1": cpu1, "cpu_pass2": cpu2, "leep": record["leep"],
            **({key: record[key] for key in ("logme", "hscore", "hscore_shrinkage")} if features else {})}


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
        history = []
        for closed, y, z in [(0, 100, 1000), (1000, 100, 1000), (10000, 10, 100)]:
            history.append(history_once(broker, closed, y, z))
        history.append(history_once(broker, 10000, 10, 100, static_membership=True))
        return {"zoo": zoo, "history": history}
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
    arguments = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    saved = DATA / "results.json"
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
               "reps": arguments.reps, "score": [], "pipeline": None}
    if arguments.only_features:
        print("features (LogME, H-scores) …", file=sys.stderr, flush=True)
        results["features"] = features_case(arguments.reps)
        (DATA / "features.json").write_text(json.dumps(results, indent=1, default=str))
        print(report_features(results["features"]))
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
        print("features (LogME, H-scores) …", file=sys.stderr, flush=True)
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
             "", "| closed runs behind the aggregator (Y × Z) | membership | closed ids read on take-over | new owner's memory (RSS) | "
             "first owner's memory before the kill | kill -9 → next run final (session timeout 6 s) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for h in service["history"]:
        lines.append(f"| {h['closed']:,} ({h['Y']} × {h['Z']:,}) | {'static' if h.get('static') else 'dynamic'} | "
                     f"{h['closed_ids_read']} | {h['rss_mb']:.1f} MB | {h['first_owner_rss_mb']:.1f} MB | "
                     f"{h['next_final_after_kill']:.1f} s |")
    return "\n".join(lines)


def report(results: dict) -> str:
    lines = [f"Machine: {results['machine']}; {results['reps']} measured repetitions after a warm-up; medians.", "",
             "| case | n × Z × Y | file | `leep score` (LEEP, NCE) | `--eep-accuracy` | thuml NumPy (a) | NumPy float64 (b) | floor (c) | (a)/ours | (b)/ours | ours/(c) | `--eep-accuracy`/(c) | peak memory beyond the file | agrees to 1e-9 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results["score"]:
        ours, full = r["leep_score"][0], r["leep_score_accuracy"][0]
        a, b, c = r["thuml"][0], r["numpy_float64"][0], r["floor"][0]
        lines.append(f"| {r['case']} | {r['n']:,} × {r['Z']:,} × {r['Y']} | {r['bytes'] / 1e6:,.0f} MB | {ours:.3f} s | "
                     f"{full:.3f} s | {a:.3f} s | {b:.3f} s | {c:.3f} s | {a / ours:.1f}× | {b / ours:.1f}× | "
                     f"{ours / c:.1f}× | {full / c:.1f}× | {r['peak_rss_beyond_file_mb']:.0f} MB | {'yes' if r['agrees'] else 'NO'} |")
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
