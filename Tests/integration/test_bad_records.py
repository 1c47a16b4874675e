"""Bad records on the wire: each goes to the dead-letter topic with the reason in its headers,
a run that cannot be scored is published as failed with the reason, a run whose shards stop
arriving shows as incomplete, every other run finishes exact, and no process exits."""

from __future__ import annotations

import json
import math
import random
import struct
import sys
import time

import numpy as np

from cluster import ROOT, make_run, wait_for
from wire import RawProducer, chunk_frames, frames, publish_run, random_rows, read_topic

sys.path.insert(0, str(ROOT / "Tests" / "reference"))
from leep_reference import leep_scores  # noqa: E402

Z, Y, ROWS = 20, 4, 300


def softmax_rows(seed: int) -> tuple[np.ndarray, np.ndarray]:
    return random_rows(seed, ROWS, Z, Y)


def latest_records(cluster) -> dict[str, dict]:
    output = cluster.kafka_run("scores", "--json").stdout
    return {record["run"]: record for record in map(json.loads, output.splitlines())}


def test_bad_records_are_dead_lettered_and_fail_only_their_run(fresh_cluster, tmp_path, report):
    cluster = fresh_cluster
    bootstrap = f"127.0.0.1:{cluster.port}"
    # One worker, so the chunk with a foreign class count meets a worker that knows its run's.
    cluster.start("worker", "worker")
    cluster.start("aggregator", "aggregate", "--repair-after", "5", "--incomplete-after", "6")
    producer = RawProducer(bootstrap)
    prefix = cluster.prefix

    # Two good runs, produced by leep itself.
    good = {}
    for index, name in enumerate(["good-a", "good-b"]):
        (predictions, labels), _ = make_run(tmp_path, name, rows=5_000, source=40, target=6, dtype=np.float32,
                                            seed=40 + index)
        good[f"run-{name}"] = leep_scores(np.load(predictions), np.load(labels))
        cluster.kafka_run("produce", "--model", name, "--dataset", "bad-records", "--run", f"run-{name}",
                          "--predictions", str(predictions), "--labels", str(labels), "--eep-accuracy")

    # Malformed frames: nobody can tell whose they are, so they only go to the dead-letter topic.
    theta, labels = softmax_rows(1)
    valid = chunk_frames("run-garbage", "m", "bad-records", theta, labels, 100, Y)[0][2]
    rng = random.Random(7)
    malformed = {
        "random bytes": bytes(rng.getrandbits(8) for _ in range(300)),
        "wrong magic": b"XXXX" + valid[4:],
        "wrong version": valid[:4] + bytes([9]) + valid[5:],
        "truncated frame": valid[:60],
        # source_classes says 19 while the rows hold 20 values each.
        "sizes that do not match": valid.replace(struct.pack("<QIII", 0, 100, Z, Y), struct.pack("<QIII", 0, 100, Z - 1, Y), 1),
    }
    producer.send(prefix + "chunks", list(malformed.values()) + [None])  # None: a null value, a tombstone
    # A valid frame on the wrong topic: a chunk on the runs topic, which the aggregator reads.
    producer.send(prefix + "runs", [valid], key="run-garbage")

    # Well-formed chunks whose rows cannot be scored: their runs fail, the rest go on.
    bad_rows = {}
    for name, spoil, expected in [
        ("nan", lambda t, l: t.__setitem__((150, 3), np.nan), "nan"),
        ("negative", lambda t, l: t.__setitem__((150, 3), -0.25), "negative probability"),
        ("unnormalised", lambda t, l: t.__setitem__(150, t[150] * 3), "sums to"),
        ("label", lambda t, l: l.__setitem__(150, Y), "label 4 is outside [0, 4)"),
    ]:
        theta, labels = softmax_rows(hash(name) % 1000)
        spoil(theta, labels)
        run = f"run-bad-{name}"
        publish_run(producer, prefix, run, f"bad-{name}", "bad-records",
                    chunk_frames(run, f"bad-{name}", "bad-records", theta, labels, 100, Y), Z, Y, ROWS)
        bad_rows[run] = expected

    # A chunk whose class count differs from its run's, published after the run's own chunks and
    # listed by the run's manifest: the run cannot complete without it, so it must fail whatever
    # the timing (published after the run had completed, it would rightly change nothing).
    theta, labels = softmax_rows(3)
    chunks = chunk_frames("run-bad-shape", "bad-shape", "bad-records", theta, labels, 100, Y)
    wide = np.hstack([theta[:100], np.zeros((100, 1), dtype=np.float32)])
    odd = frames.chunk_frame("run-bad-shape", "bad-shape", "bad-records", 0, 1, 300, Z + 1, Y, 2,
                             [int(y) for y in labels[:100]], wide.tolist())
    publish_run(producer, prefix, "run-bad-shape", "bad-shape", "bad-records", chunks + [(300, 100, odd)], Z, Y,
                ROWS + 100)
    # The aggregator knows the run's Z from its manifest and blames the chunk that differs.
    bad_rows["run-bad-shape"] = "chunk shard 0 rows 300..<400 has 21 source classes, its run's manifest 20"

    # A stray chunk with another class count published before the run's own, not listed by its
    # manifest: whenever its sums arrive, the good chunks are neither blamed nor dead-lettered —
    # the run is final and exact (the stray came after the run was complete) or fails naming
    # the stray.
    theta, labels = softmax_rows(5)
    stray = frames.chunk_frame("run-stray-first", "stray", "bad-records", 0, 1, 900, Z + 1, Y, 2,
                               [int(y) for y in labels[:100]], np.hstack([theta[:100], np.zeros((100, 1), np.float32)]).tolist())
    producer.send(prefix + "chunks", [stray])
    publish_run(producer, prefix, "run-stray-first", "stray", "bad-records",
                chunk_frames("run-stray-first", "stray", "bad-records", theta, labels, 100, Y), Z, Y, ROWS)
    stray_expected = leep_scores(theta, labels, Y)

    # A run of two shards of which only one ever arrives: incomplete, naming the missing shard.
    theta, labels = softmax_rows(4)
    located = producer.send(prefix + "chunks", [
        frames.chunk_frame("run-stalled", "stalled", "bad-records", 0, 2, 0, Z, Y, 2,
                           [int(y) for y in labels[:100]], theta[:100].tolist())])
    producer.send(prefix + "runs", [frames.manifest_frame(
        "run-stalled", "stalled", "bad-records", 0, 2, Z, Y, 100, 1, 0, 1, [(0, 100, *located[0])])],
        key="run-stalled")

    # Chunks whose manifest never comes: incomplete, under the names the chunks carry.
    theta, labels = softmax_rows(6)
    producer.send(prefix + "chunks", [frame for _, _, frame in
                                      chunk_frames("run-chunks-only", "orphan", "bad-records", theta, labels, 100, Y)])

    def settled():
        records = latest_records(cluster)
        done = all(records.get(run, {}).get("status") == "final" for run in good)
        failed = all(records.get(run, {}).get("status") == "failed" for run in bad_rows)
        stalled = records.get("run-stalled", {}).get("status") == "incomplete" \
            and records.get("run-chunks-only", {}).get("status") == "incomplete"
        stray_done = records.get("run-stray-first", {}).get("status") in ("final", "failed")
        return records if done and failed and stalled and stray_done else None

    records = wait_for(settled, 120, 1, "good runs final, bad runs failed, the stalled run incomplete")

    for run, expected in good.items():
        for key in ("leep", "nce", "eep_accuracy"):
            assert math.isclose(records[run][key], expected[key], rel_tol=1e-9, abs_tol=1e-12), (run, key)
    for run, text in bad_rows.items():
        assert text in records[run]["reason"], (run, records[run]["reason"])
    assert "shard 1 of 2" in records["run-stalled"]["reason"], records["run-stalled"]["reason"]
    assert "1 chunks accepted" in records["run-stalled"]["reason"]
    orphan = records["run-chunks-only"]
    assert (orphan["model"], orphan["dataset"]) == ("orphan", "bad-records"), orphan
    assert "no manifest from any shard" in orphan["reason"] and "3 chunks accepted" in orphan["reason"], orphan
    stray_record = records["run-stray-first"]
    if stray_record["status"] == "final":
        assert math.isclose(stray_record["leep"], stray_expected["leep"], rel_tol=1e-9, abs_tol=1e-12)
    else:
        assert stray_record["reason"] == "chunk shard 0 rows 900..<1000 has 21 source classes, its run's manifest 20", \
            stray_record["reason"]

    letters = read_topic(bootstrap, prefix + "deadletter")
    reasons = [headers.get("leep.reason", b"").decode() for _, headers in letters]
    assert all(reasons), "every dead letter carries its reason"
    assert all(headers.get("leep.source.topic") for _, headers in letters)
    for text in ["bad magic", "unsupported frame version", "truncated", "do not match", "is nan",
                 "negative probability", "sums to", "label 4 is outside", "null value (a tombstone)",
                 "a chunk frame does not belong on " + prefix + "runs"]:
        assert any(text in reason for reason in reasons), (text, reasons)
    assert not any("source classes" in reason for reason in reasons), "a class count is judged by the manifest"
    # Every bad row's chunk is dead-lettered; the chunk with another class count is not (its
    # run fails naming it).
    assert len(letters) >= len(malformed) + 2 + len(bad_rows) - 1
    summary = f"[bad records] {len(letters)} dead letters; {len(bad_rows)} runs failed with their reason; " \
              f"stray chunk with another Z published first: {stray_record['status']}; " \
              f"{len(good)} good runs exact; stalled run: {records['run-stalled']['reason']}"
    report(summary)
    (cluster.tmp / "result.txt").write_text(summary + "\n")

    for name in ("worker", "aggregator"):
        assert cluster.processes[name].poll() is None, f"the {name} must not exit on bad input"
