"""What an on-call engineer needs at night: a run whose records are gone fails, naming them,
without delaying any other run; roles survive a broker that froze or lost everything and come
back on their own; a producer or a worker with no broker says so at once."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

import cluster as cluster_module
from cluster import ROOT, Cluster, make_run, wait_for
from wire import RawProducer, frames

sys.path.insert(0, str(ROOT / "Tests" / "reference"))
from leep_reference import leep_scores  # noqa: E402


def latest_records(cluster) -> dict[str, dict]:
    output = cluster.kafka_run("scores", "--json").stdout
    return {record["run"]: record for record in map(json.loads, output.splitlines())}


def run_files(tmp_path, name, rows, seed, source=40, target=6):
    (predictions, labels), _ = make_run(tmp_path, name, rows=rows, source=source, target=target, dtype=np.float32,
                                        seed=seed)
    return predictions, labels, leep_scores(np.load(predictions), np.load(labels))


def produce(cluster, name, files, *extra):
    predictions, labels, _ = files
    cluster.kafka_run("produce", "--model", name, "--dataset", "hardening", "--run", f"run-{name}",
                      "--predictions", str(predictions), "--labels", str(labels), "--eep-accuracy", *extra)


def assert_exact(record, expected, what):
    assert record["status"] == "final", (what, record)
    for key in ("leep", "nce", "eep_accuracy"):
        assert math.isclose(record[key], expected[key], rel_tol=1e-9, abs_tol=1e-12), (what, key)


def wait_final(cluster, run, timeout):
    def final():
        record = latest_records(cluster).get(run)
        return record if record and record["status"] in ("final", "failed") else None
    return wait_for(final, timeout, 0.5, f"{run} final\n{cluster.log_tails()}")


def test_a_run_whose_chunks_are_gone_fails_naming_them_and_delays_no_other(fresh_cluster, tmp_path, report):
    cluster = fresh_cluster
    cluster.start("worker", "worker")
    cluster.start("aggregator", "aggregate", "--repair-after", "2", "--repair-anyway-after", "6")
    # What lost records leave behind: a valid manifest listing chunks at offsets far past the
    # end of their partition.
    producer = RawProducer(f"127.0.0.1:{cluster.port}")
    listed = [(0, 100, 0, 10_000_000), (100, 100, 0, 10_000_001)]
    producer.send(cluster.prefix + "runs", [frames.manifest_frame(
        "run-lost", "lost", "hardening", 0, 1, 20, 4, 200, 2, 0, 1, listed)], key="run-lost")
    good = run_files(tmp_path, "good", 15_000, 7)
    started = time.monotonic()
    produce(cluster, "good", good)
    record = wait_final(cluster, "run-good", 120)
    good_seconds = time.monotonic() - started
    assert_exact(record, good[2], "the good run")

    lost = wait_for(lambda: latest_records(cluster).get("run-lost", {}).get("status") == "failed"
                    and latest_records(cluster)["run-lost"], 120, 0.5, "the lost run failed")
    lost_seconds = time.monotonic() - started
    assert "partition 0 offset 10000000" in lost["reason"] and "is missing" in lost["reason"], lost["reason"]
    worker_log = cluster.logs["worker"].read_text()
    assert "not received within" not in worker_log, "the broker answered: absent, not a timeout"
    for name in ("worker", "aggregator"):
        assert cluster.processes[name].poll() is None, f"the {name} must not exit"
    report(f"[lost chunks] the run whose 2 chunks are gone failed {lost_seconds:.1f} s after the good run was "
           f"started, naming them; the good 15,000-row run final and exact in {good_seconds:.1f} s")


def test_a_producer_with_no_broker_fails_within_seconds_in_one_line(tmp_path, report):
    predictions, labels, _ = run_files(tmp_path, "orphan", 1_000, 3)
    started = time.monotonic()
    result = subprocess.run(
        [str(Cluster(tmp_path, 1).leep), "produce", "--brokers", "127.0.0.1:1", "--model", "m", "--dataset", "d",
         "--predictions", str(predictions), "--labels", str(labels)], capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - started
    assert result.returncode != 0
    lines = (result.stdout + result.stderr).splitlines()
    assert "no Kafka broker answered at 127.0.0.1:1 within 30 s" in lines[-1], lines[-1]
    assert len(lines) <= 10, "librdkafka's repeats are held back\n" + "\n".join(lines)
    assert seconds < 90, seconds
    report(f"[no broker] leep produce failed after {seconds:.1f} s with {len(lines)} lines: {lines[-1]}")


def health(port: int, path: str = "/health") -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
    except urllib.error.URLError:
        return 0, {}  # not listening yet


def test_a_worker_with_no_broker_answers_503(tmp_path):
    cluster = Cluster(tmp_path, 1)
    port = 19561
    log = tmp_path / "worker.log"
    process = subprocess.Popen([str(cluster.leep), "worker", "--brokers", "127.0.0.1:1", "--metrics-port", str(port)],
                               stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        status, body = wait_for(lambda: (lambda answer: answer if answer[0] == 503 else None)(health(port)), 30, 0.5,
                                "/health 503")
        assert "no broker answered" in body["reason"], body
        assert health(port, "/live")[0] == 200, "alive: a liveness probe must not restart it for a broker outage"
        assert process.poll() is None, "it waits for its broker rather than exiting"
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture
def own_broker(tmp_path):
    """A memory broker of its own, which a test may freeze or restart (losing everything)."""
    with cluster_module.own_broker(tmp_path, int(os.environ.get("LEEP_TEST_OWN_BROKER_PORT", "19098"))) as cluster:
        yield cluster


def broker_pid(cluster) -> int:
    return int((ROOT / ".deps" / "broker" / f"tansu-{cluster.port}.pid").read_text())


def test_roles_recover_after_the_broker_lost_everything(own_broker, tmp_path, report):
    cluster = own_broker
    cluster.start("worker", "worker")
    cluster.start("aggregator", "aggregate", "--repair-after", "3")
    before = run_files(tmp_path, "before", 5_000, 21)
    produce(cluster, "before", before)
    assert_exact(wait_final(cluster, "run-before", 120), before[2], "the run before the loss")

    lines_before = {name: len(path.read_text().splitlines()) for name, path in cluster.logs.items()}
    cluster.broker("restart")  # memory storage: topics, records, groups and producer ids are gone
    restarted = time.monotonic()
    after = run_files(tmp_path, "after", 5_000, 22)
    produce(cluster, "after", after)
    assert_exact(wait_final(cluster, "run-after", 180), after[2], "the run after the loss")
    seconds = time.monotonic() - restarted
    for name, process in cluster.processes.items():
        assert process.poll() is None, f"the {name} recovers rather than exiting"
        lines = len(cluster.logs[name].read_text().splitlines()) - lines_before[name]
        assert lines < 200, f"{name} logged {lines} lines: one per change, not one per try"
    report(f"[broker lost everything] the next run final and exact {seconds:.1f} s after the memory broker's "
           f"restart (roles rebuilt their clients; no exit)")


def test_roles_survive_a_broker_frozen_for_20_seconds(own_broker, tmp_path, report):
    cluster = own_broker
    cluster.start("worker0", "worker")
    cluster.start("worker1", "worker")
    cluster.start("aggregator", "aggregate", "--repair-after", "3")
    (predictions, labels), shards = make_run(tmp_path, "frozen", rows=60_000, source=20, target=4, dtype=np.float32,
                                             seed=31, shards=2)
    expected = leep_scores(np.load(predictions), np.load(labels))

    def publish(shard):
        cluster.kafka_run("produce", "--model", "frozen", "--dataset", "hardening", "--run", "run-frozen",
                          "--shards", "2", "--shard", str(shard), "--predictions", str(shards[shard][0]),
                          "--labels", str(shards[shard][1]), "--eep-accuracy", "--chunk-rows", "10")

    # The first of two shards in, so the run is open (pass 1 waits for the second) when the
    # broker stops answering for longer than the session timeout.
    publish(0)
    wait_for(lambda: latest_records(cluster).get("run-frozen", {}).get("chunks_accepted", 0) > 0, 120, 0.1,
             "pass 1 under way")
    pid = broker_pid(cluster)
    os.kill(pid, signal.SIGSTOP)
    time.sleep(20)
    os.kill(pid, signal.SIGCONT)
    resumed = time.monotonic()
    publish(1)
    assert_exact(wait_final(cluster, "run-frozen", 240), expected, "the run across the freeze")
    seconds = time.monotonic() - resumed
    for name, process in cluster.processes.items():
        assert process.poll() is None, f"the {name} must survive the freeze"
    report(f"[broker frozen 20 s] the open 6,000-chunk run final and exact {seconds:.1f} s after the broker "
           f"resumed (its second shard published then); no role exited")
