"""leepstream as a long-running service: an aggregator that takes over a partition full of closed
runs reads their ids, not their history, republishes nothing and acts once it has read its own
barrier back; a malformed record is dead-lettered once however often it is replayed; a run that
never finishes is abandoned, and then the committed offsets move past it."""

from __future__ import annotations

import json
import math
import re
import signal
import sys
import time

import numpy as np
from confluent_kafka import Consumer, TopicPartition

from cluster import ROOT, wait_for
from wire import RawProducer, chunk_frames, frames, publish_run, random_rows, read_topic

sys.path.insert(0, str(ROOT / "Tests" / "reference"))
from leep_reference import leep_scores  # noqa: E402

Z, Y, ROWS = 20, 4, 300


def small_run(seed: int) -> tuple[np.ndarray, np.ndarray]:
    return random_rows(seed, ROWS, Z, Y)


def publish_small(producer: RawProducer, prefix: str, run: str, seed: int) -> dict:
    theta, labels = small_run(seed)
    publish_run(producer, prefix, run, f"model-{run}", "service", chunk_frames(run, f"model-{run}", "service", theta, labels, 100, Y),
                Z, Y, ROWS)
    return leep_scores(theta.astype(np.float64), labels)


def score_records(cluster) -> list[dict]:
    return [json.loads(value) for value, _ in read_topic(f"127.0.0.1:{cluster.port}", cluster.prefix + "scores", idle=1.5)]


def finals(records: list[dict]) -> dict[str, dict]:
    return {record["run"]: record for record in records if record["status"] in ("final", "failed")}


def committed_offsets(cluster, group: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": f"127.0.0.1:{cluster.port}", "group.id": group, "enable.auto.commit": False})
    try:
        committed = consumer.committed([TopicPartition(cluster.prefix + "runs", p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in committed}
    finally:
        consumer.close()


def runs_topic_ends(cluster) -> dict[int, int]:
    """The offset after the last record of each partition of the runs topic, read to the end
    (the local broker's watermarks are wrong)."""
    consumer = Consumer({"bootstrap.servers": f"127.0.0.1:{cluster.port}", "group.id": "leepstream-test-ends",
                         "enable.auto.commit": False})
    topic = cluster.prefix + "runs"
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    ends = {p: 0 for p in partitions}
    last = time.monotonic()
    while time.monotonic() - last < 1.5:
        message = consumer.poll(0.2)
        if message is None or message.error():
            continue
        last = time.monotonic()
        ends[message.partition()] = max(ends[message.partition()], message.offset() + 1)
    consumer.close()
    return ends


def test_take_over_after_kill_reads_closed_ids_not_history(fresh_cluster, report):
    cluster = fresh_cluster
    prefix = cluster.prefix
    producer = RawProducer(f"127.0.0.1:{cluster.port}")
    cluster.start("worker", "worker")
    cluster.start("aggregator0", "aggregate")
    expected = {f"old-{index}": publish_small(producer, prefix, f"old-{index}", index) for index in range(12)}
    # A malformed record on the runs topic: dead-lettered by the first owner, never again.
    producer.send(prefix + "runs", [b"LPST\x01\x63 not a frame"], key="old-0")
    wait_for(lambda: set(expected) <= set(finals(score_records(cluster))), 120, 1, "12 runs final")

    cluster.stop("aggregator0", signal.SIGKILL)
    killed = time.monotonic()
    cluster.start("aggregator1", "aggregate")
    expected["new"] = publish_small(producer, prefix, "new", 99)
    wait_for(lambda: "new" in finals(score_records(cluster)), 120, 0.2, "the run after the take-over final")
    take_over = time.monotonic() - killed

    records = score_records(cluster)
    for run, reference in expected.items():
        record = finals(records)[run]
        assert record["status"] == "final", record
        assert math.isclose(record["leep"], reference["leep"], rel_tol=1e-9), (run, record, reference)
    closings = [record["run"] for record in records if record["status"] in ("final", "failed")]
    assert sorted(closings) == sorted(expected), "each run's score is published once, none again by the new owner"
    log = cluster.logs["aggregator1"].read_text()
    assert re.search(r'closed_runs="?12\b', log), "the new owner learns the 12 closed runs from the closed topic"
    assert "runs partition caught up" in log
    letters = [headers for _, headers in read_topic(f"127.0.0.1:{cluster.port}", prefix + "deadletter")]
    assert len(letters) == 1, letters
    line = f"[take-over] aggregator kill -9 with 12 closed runs behind it: next run final {take_over:.1f} s later " \
           f"(session timeout 6 s); 13 runs exact; 0 scores republished; 1 dead letter"
    report(line)


def test_a_run_that_never_finishes_is_abandoned_and_stops_pinning_the_history(fresh_cluster, report):
    cluster = fresh_cluster
    prefix = cluster.prefix
    producer = RawProducer(f"127.0.0.1:{cluster.port}")
    cluster.start("worker", "worker")
    cluster.start("aggregator", "aggregate", "--incomplete-after", "2", "--abandon-after", "5")
    # Shard 0 of 2 only: the run can never complete.
    theta, labels = small_run(7)
    located = producer.send(prefix + "chunks", [
        frames.chunk_frame("stuck", "stuck", "service", 0, 2, 0, Z, Y, 2, [int(y) for y in labels[:100]], theta[:100].tolist())])
    producer.send(prefix + "runs", [frames.manifest_frame(
        "stuck", "stuck", "service", 0, 2, Z, Y, 100, 1, 0, 1, [(0, 100, *located[0])])], key="stuck")
    good = publish_small(producer, prefix, "good", 8)

    record = wait_for(lambda: finals(score_records(cluster)).get("stuck"), 60, 1, "the stuck run closed")
    assert record["status"] == "failed", record
    assert record["reason"].startswith("abandoned: no record for 5 s; no complete manifest from shard 1 of 2"), record
    assert any(r["run"] == "stuck" and r["status"] == "incomplete" for r in score_records(cluster))
    assert math.isclose(finals(score_records(cluster))["good"]["leep"], good["leep"], rel_tol=1e-9)

    # Nothing is open any more: the group's committed offsets reach the end of every partition.
    def caught_up():
        ends = runs_topic_ends(cluster)
        committed = committed_offsets(cluster, prefix + "aggregators", len(ends))
        return all(committed[p] >= end for p, end in ends.items() if end > 0) and (committed, ends)

    committed, ends = wait_for(caught_up, 30, 1, "committed offsets at the end of the runs topic")
    report(f"[abandon] a run with 1 of 2 shards: incomplete after 2 s, failed (abandoned) after 5 s; "
           f"committed offsets at the end of every runs partition: {committed}")
