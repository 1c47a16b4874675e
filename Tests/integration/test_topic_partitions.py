"""Partition counts come from the cluster, not from the code: topics created with
`leep topics create --chunk-partitions 16` keep 16 workers busy. Sixteen workers and one
aggregator on a topic prefix of their own; one run cut into enough chunks that every chunks
partition gets some. The final score must equal `leep score` to 1e-9 relative, and every worker
must have consumed chunks (the `chunks=` count of its "worker stopped" line on SIGTERM)."""

from __future__ import annotations

import json
import re
import signal
import subprocess

import numpy as np

from cluster import Cluster, assert_matches_leep_score, make_run, wait_for

WORKERS = 16
# 320 chunks of 30 rows: each of the 16 partitions is empty with probability (15/16)^320 < 1e-8.
ROWS, CHUNK_ROWS = 9_600, 30


def latest_assignment(log: str) -> str:
    """The partitions of a worker's latest "partitions assigned" line ("" before the first)."""
    found = re.findall(r'msg="partitions assigned" partitions="\[(.*)\]"', log)
    return found[-1] if found else ""


def test_sixteen_chunk_partitions_keep_sixteen_workers_busy(tmp_path, broker_port, report):
    cluster = Cluster(tmp_path, broker_port)
    sizing = ["--chunk-partitions", str(WORKERS)]
    plan = json.loads(cluster.leep_run("topics", "plan", "--json", "--topic-prefix", cluster.prefix, *sizing).stdout)
    partitions = {topic["name"][len(cluster.prefix):]: topic["partitions"] for topic in plan["topics"]}
    assert partitions["chunks"] == partitions["tasks"] == WORKERS
    assert partitions["closed"] == partitions["runs"]
    created = cluster.kafka_run("topics", "create", *sizing, timeout=60)
    assert created.stdout.count("created") == len(plan["topics"]), created.stdout

    (predictions, labels), _ = make_run(tmp_path / "data", "wide", rows=ROWS, source=24, target=6,
                                        dtype=np.float32, seed=16)
    names = [f"worker{index}" for index in range(WORKERS)]
    try:
        for name in names:
            cluster.start(name, "worker", "--chunk-cache-mb", "16")
        cluster.start("aggregator", "aggregate")

        # The group is settled once every worker's latest assignment holds a chunks partition:
        # with 16 members and 16 partitions of each topic, the range assignor gives each one of
        # each.
        def settled() -> bool:
            return all(f"{cluster.prefix}chunks[" in latest_assignment(cluster.logs[name].read_text(errors="replace"))
                       for name in names)
        wait_for(settled, 120, 0.5, "every worker to hold partitions")

        # No sticky partitioning: each chunk goes to a random partition, so all of them get some.
        produced = cluster.kafka_run(
            "produce", "--model", "wide", "--dataset", "sixteen", "--run", "run-wide",
            "--predictions", str(predictions), "--labels", str(labels), "--chunk-rows", str(CHUNK_ROWS),
            "--kafka-config", "sticky.partitioning.linger.ms=0", timeout=120, check=False)
        assert produced.returncode == 0, produced.stderr
        waited = cluster.kafka_run("scores", "--wait-count", "1", "--timeout", "120", "--json",
                                   timeout=180, check=False)
        assert waited.returncode == 0, waited.stderr + "\n" + cluster.log_tails()
        record = next(r for r in map(json.loads, waited.stdout.splitlines()) if r["run"] == "run-wide")
        assert_matches_leep_score(cluster, "wide", record, predictions, labels)
    finally:
        # SIGTERM to all at once (one at a time would rebalance the group 16 times), then wait.
        for process in cluster.processes.values():
            process.send_signal(signal.SIGTERM)
        for process in cluster.processes.values():
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                pass  # stop_all kills it
        cluster.stop_all()

    consumed = {}
    for name in names:
        stopped = re.search(r"worker stopped.*?\bchunks=(\d+)", cluster.logs[name].read_text(errors="replace"))
        assert stopped, f"{name} logged no 'worker stopped' line:\n" + cluster.log_tails()
        consumed[name] = int(stopped.group(1))
    idle = [name for name, chunks in consumed.items() if chunks == 0]
    assert not idle, f"workers that consumed no chunk: {idle} ({consumed})"
    assert sum(consumed.values()) >= ROWS // CHUNK_ROWS
    report(f"[16 chunk partitions] 1 run exact to 1e-9; all {WORKERS} workers consumed chunks "
           f"({min(consumed.values())}..{max(consumed.values())} each, {sum(consumed.values())} in all)")
