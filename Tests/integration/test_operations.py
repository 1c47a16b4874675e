"""Operating the pipeline: /metrics and /health served by workers and aggregators and scraped
during a real run (the health rule itself is unit-tested in PipelineTests/RoleHealthTests), ordered shutdown on SIGTERM, the progress display of `leep produce` in a real
terminal (tmux) and in a pipe, and the live leaderboard of `leep scores --follow` in both."""
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from cluster import ROOT, assert_matches_leep_score, make_run, wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def samples(text: str) -> dict[str, float]:
    """`name{labels}` → value, from the Prometheus text format."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            values[key] = float(value)
    return values


def total(values: dict[str, float], name: str) -> float:
    return sum(value for key, value in values.items() if key == name or key.startswith(name + "{"))


def wait_for_log(cluster, name: str, text: str, timeout: float = 60) -> None:
    wait_for(lambda: text in cluster.logs[name].read_text(), timeout, 0.5, f"{name}: {text}")


def test_metrics_and_health_during_a_run(fresh_cluster, tmp_path):
    cluster = fresh_cluster
    worker_port, aggregator_port = free_port(), free_port()
    worker = cluster.start("worker", "worker", "--metrics-port", str(worker_port), "--metrics-host", "127.0.0.1")
    aggregator = cluster.start("aggregator", "aggregate", "--metrics-port", str(aggregator_port),
                               "--metrics-host", "127.0.0.1")
    wait_for_log(cluster, "worker", "partitions assigned")
    for port, role in [(worker_port, "worker"), (aggregator_port, "aggregator")]:
        status, body = get(port, "/health")
        assert status == 200, body
        assert json.loads(body)["status"] == "ok" and json.loads(body)["role"] == role

    (predictions, labels), _ = make_run(tmp_path, "ops", rows=40_000, source=500, target=20, dtype=np.float32, seed=70)
    producer = subprocess.Popen(
        [str(cluster.leep), "produce", "--model", "ops", "--dataset", "metrics", "--run", "run-ops",
         "--predictions", str(predictions), "--labels", str(labels), "--chunk-rows", "500", *cluster.common],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster.env)

    # Scraped while the run goes on: the worker's counters move.
    seen = wait_for(lambda: total(samples(get(worker_port, "/metrics")[1]),
                                  "leep_worker_records_consumed_total") > 0, 60, 0.2, "chunks consumed")
    assert seen
    assert producer.wait(120) == 0, producer.stderr.read()
    waited = cluster.kafka_run("scores", "--wait-count", "1", "--timeout", "120", "--json", check=False)
    assert waited.returncode == 0, waited.stderr + cluster.log_tails()
    record = json.loads(waited.stdout.splitlines()[-1])
    assert_matches_leep_score(cluster, "ops", record, predictions, labels)

    def worker_done():
        values = samples(get(worker_port, "/metrics")[1])
        return values if total(values, "leep_worker_tasks_done_total") > 0 else None

    worker_values = wait_for(worker_done, 30, 0.5, "worker metrics after the run")
    status, text = get(worker_port, "/metrics")
    assert status == 200
    # 40,000 rows / 500 = 80 chunks; delivery is at least once, so a retried send may add one.
    assert worker_values['leep_worker_records_consumed_total{topic="chunks"}'] >= 80
    assert worker_values['leep_worker_bytes_consumed_total{topic="chunks"}'] > 40_000 * 500 * 4
    assert worker_values["leep_worker_partials_flushed_total"] >= 1
    assert total(worker_values, "leep_worker_tasks_done_total") >= 1
    assert worker_values["leep_worker_dead_letters_total"] == 0
    assert worker_values['leep_up{role="worker"}'] == 1
    wait_for(lambda: any(key.startswith("leep_consumer_lag{topic=\"chunks\"")
                         for key in samples(get(worker_port, "/metrics")[1])), 30, 0.5, "the worker's lag")

    aggregator_values = wait_for(
        lambda: (values := samples(get(aggregator_port, "/metrics")[1]))
        and values.get('leep_aggregator_runs_closed_total{status="final"}') == 1
        and values.get("leep_aggregator_runs_open") == 0 and values,
        30, 0.5, "aggregator metrics after the run")
    assert aggregator_values["leep_aggregator_pass2_tasks_issued_total"] >= 1
    assert aggregator_values["leep_aggregator_duplicates_dropped_total"] == 0
    assert aggregator_values["leep_aggregator_runs_open"] == 0
    assert not any(key.startswith("leep_run_chunks_accepted{") for key in aggregator_values), \
        "a closed run's progress series is dropped"

    # A run waiting for its second shard is open, and its progress is served per run.
    (_, _), shards = make_run(tmp_path, "open", rows=4_000, source=50, target=5, dtype=np.float32, seed=74, shards=2)
    cluster.kafka_run("produce", "--model", "open", "--dataset", "metrics", "--run", "run-open", "--shard", "0",
                      "--shards", "2", "--predictions", str(shards[0][0]), "--labels", str(shards[0][1]),
                      "--chunk-rows", "500")
    progress = '{run="run-open",model="open",dataset="metrics"}'
    open_values = wait_for(
        lambda: (values := samples(get(aggregator_port, "/metrics")[1]))
        and values.get("leep_aggregator_runs_open") == 1 and values.get("leep_run_chunks_accepted" + progress) == 4
        and values, 30, 0.5, "the open run in the aggregator's metrics")
    assert open_values["leep_run_pass" + progress] == 1
    assert open_values["leep_run_chunks_expected" + progress] == 0, "not every manifest is in yet"

    # The scrape is valid Prometheus text format and carries every metric the dashboard and the
    # alerts use, with their labels (ops/grafana/metrics.txt; promtool lints all but the HELP
    # lines, which swift-metrics cannot carry).
    for port, role in ((worker_port, "worker"), (aggregator_port, "aggregator")):
        scrape = tmp_path / f"{role}.prom"
        scrape.write_text(get(port, "/metrics")[1])
        # The validator's tools (kubernetes-validate, promtool) sit beside this interpreter.
        path = f"{pathlib.Path(sys.executable).parent}:{os.environ['PATH']}"
        checked = subprocess.run([str(ROOT / "ops/validate-deploy"), "scrape", str(scrape), role],
                                 capture_output=True, text=True, env=dict(os.environ, PATH=path))
        assert checked.returncode == 0, checked.stdout + checked.stderr

    # SIGTERM: the role stops first (flush, commit, leave), then the HTTP server; exit 0.
    cluster.stop("worker", signal.SIGTERM)
    assert worker.returncode == 0, cluster.logs["worker"].read_text()[-2000:]
    assert "worker stopped" in cluster.logs["worker"].read_text()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{worker_port}/health", timeout=2)
    cluster.stop("aggregator", signal.SIGTERM)
    assert aggregator.returncode == 0


PROGRESS_LINE = re.compile(r"^(\d+)/(\d+) rows \((\d+)%\), [\d.]+ MB/s, ETA (\d+ s|\d+ min \d+ s|--)$")


def test_produce_progress_in_a_pipe(fresh_cluster, tmp_path):
    cluster = fresh_cluster
    (predictions, labels), _ = make_run(tmp_path, "pipe", rows=20_000, source=100, target=10, dtype=np.float32, seed=71)
    produced = cluster.kafka_run("produce", "--model", "pipe", "--dataset", "progress", "--predictions", str(predictions),
                                 "--labels", str(labels), "--chunk-rows", "200")
    lines = [line for line in produced.stderr.splitlines() if PROGRESS_LINE.match(line)]
    assert lines, produced.stderr
    assert "\r" not in produced.stderr and "\x1b[" not in produced.stderr, "no terminal control codes in a pipe"
    last = PROGRESS_LINE.match(lines[-1])
    assert last.group(1) == last.group(2) == "20000" and last.group(3) == "100"


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def test_produce_progress_bar_and_live_leaderboard_in_a_terminal(fresh_cluster, tmp_path):
    cluster = fresh_cluster
    cluster.start("worker", "worker")
    cluster.start("aggregator", "aggregate")
    wait_for_log(cluster, "worker", "partitions assigned")
    session = f"leep-{cluster.prefix.rstrip('.')}"
    env = " ".join(f"{key}={value}" for key, value in [("TERM", "xterm")])
    common = " ".join(cluster.common)
    tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "40")
    try:
        # The live leaderboard in the first window.
        tmux("send-keys", "-t", f"{session}:0", f"{env} {cluster.leep} scores --follow {common}", "Enter")
        # A run whose second shard is missing stays in pass 1 and shows its progress.
        (predictions, labels), shards = make_run(tmp_path, "term", rows=12_000, source=64, target=8,
                                                 dtype=np.float32, seed=72, shards=2)
        first, second = shards
        cluster.kafka_run("produce", "--model", "term", "--dataset", "live", "--run", "run-term", "--shard", "0",
                          "--shards", "2", "--predictions", str(first[0]), "--labels", str(first[1]))

        def screen(window: str) -> str:
            return tmux("capture-pane", "-p", "-t", f"{session}:{window}")

        shown = wait_for(lambda: (text := screen("0")) and "pass 1:" in text and text, 60, 0.5,
                         "the running run's progress on the live leaderboard")
        assert "leep scores --follow" in shown and "term" in shown and "running" in shown, shown

        # The progress bar in a second window, on the second shard.
        tmux("new-window", "-t", session)
        tmux("send-keys", "-t", f"{session}:1",
             f"{env} {cluster.leep} produce --model term --dataset live --run run-term --shard 1 --shards 2 "
             f"--predictions {second[0]} --labels {second[1]} --chunk-rows 100 {common}; echo PRODUCED-$?", "Enter")
        # "PRODUCED-0" appears only in the output (the typed command reads "PRODUCED-$?").
        bar = wait_for(lambda: (text := screen("1")) and "PRODUCED-0" in text and text, 60, 0.5, "the produce command")
        assert re.search(r"\[#{30}\] 100%  6,000/6,000 rows  [\d.]+ MB/s  ETA 0 s", bar), bar
        assert bar.count("rows  ") == 1, "the bar is redrawn in place, not printed line after line"

        final = wait_for(lambda: (text := screen("0")) and "1 final" in text and text, 60, 0.5, "the final score")
        assert re.search(r"\s1\s+term\s+-?\d+\.\d{4}", final), final
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_scores_follow_in_a_pipe_prints_a_line_per_record(fresh_cluster, tmp_path):
    cluster = fresh_cluster
    cluster.start("worker", "worker")
    cluster.start("aggregator", "aggregate")
    follower = subprocess.Popen([str(cluster.leep), "scores", "--follow", *cluster.common], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, env=cluster.env)
    try:
        (predictions, labels), _ = make_run(tmp_path, "follow", rows=5_000, source=32, target=4, dtype=np.float32, seed=73)
        cluster.kafka_run("produce", "--model", "follow", "--dataset", "piped", "--predictions", str(predictions),
                          "--labels", str(labels))
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = follower.stdout.readline()
            lines.append(line)
            if line.startswith("final follow on piped: LEEP "):
                break
        assert lines[-1].startswith("final follow on piped: LEEP "), lines
        assert "\x1b[" not in "".join(lines), "no terminal control codes in a pipe"
    finally:
        follower.send_signal(signal.SIGTERM)
        follower.wait(10)
