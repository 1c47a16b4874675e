"""The Python client (clients/python, package `leepstream`) end to end: runs published from Python
with confluent-kafka are scored by real `leep worker` and `leep aggregate` processes, and each
final score equals `leep score` on the same data.

* one run from whole arrays in 2 shards (float32), shard 0 published twice before shard 1: a
  republished shard yields the same chunk ids and is counted once;
* one run through the streaming API (`producer.run(...)` / `add`) in batches of uneven sizes
  that straddle the chunk boundaries, float16, with EEP accuracy;
* one run of 2 shards where shard 1 saw no data (an empty manifest, as the spec allows).

After the runs are final, shard 1 of the first run is published once more: the run stays
closed with the same score.

The client is imported from clients/python/src (no install needed)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from cluster import ROOT, assert_matches_leep_score, make_run

sys.path.insert(0, str(ROOT / "clients" / "python" / "src"))
from leepstream import LeepProducer, wire  # noqa: E402

WHOLE = dict(rows=12_000, source=100, target=10, dtype=np.float32, seed=21, shards=2)
STREAM = dict(rows=9_000, source=64, target=12, dtype=np.float16, seed=22)
EMPTY_SHARD = dict(rows=3_000, source=30, target=5, dtype=np.float64, seed=23)
BATCHES = [256, 1000, 37, 2048, 513, 1, 999, 700]  # cycled; chunks are 1,000 rows


def batches(rows: int):
    start, index = 0, 0
    while start < rows:
        size = BATCHES[index % len(BATCHES)]
        yield start, min(rows, start + size)
        start += size
        index += 1


@pytest.fixture(scope="module")
def published(cluster, tmp_path_factory):
    data = tmp_path_factory.mktemp("python-client")
    whole, whole_shards = make_run(data, "whole", **WHOLE)
    stream, _ = make_run(data, "stream", **STREAM)
    partial, _ = make_run(data, "empty-shard", **EMPTY_SHARD)
    for index in range(2):
        cluster.start(f"worker{index}", "worker")
    cluster.start("aggregator", "aggregate", "--repair-after", "5")

    producer = LeepProducer(f"127.0.0.1:{cluster.port}", topic_prefix=cluster.prefix)
    summaries = {}
    # Whole arrays, 2 shards; shard 0 twice.
    for shard in (0, 0, 1):
        predictions, labels = whole_shards[shard]
        summaries["whole", shard] = producer.publish(
            "py-model", "py-whole", np.load(predictions), np.load(labels), run="py-whole", shard=shard, shards=2)
    # Streaming, uneven batches, EEP accuracy.
    theta, labels = np.load(stream[0]), np.load(stream[1])
    with producer.run(model="py-model", dataset="py-stream", run="py-stream", target_classes=STREAM["target"],
                      eep_accuracy=True, rows_per_chunk=1000) as run:
        for start, end in batches(len(labels)):
            run.add(theta[start:end], labels[start:end])
    summaries["stream", 0] = run.summary
    # Shard 0 has every row; shard 1 saw none.
    theta, labels = np.load(partial[0]), np.load(partial[1])
    summaries["empty", 0] = producer.publish("py-model", "py-empty", theta, labels, run="py-empty", shard=0, shards=2)
    with producer.run(model="py-model", dataset="py-empty", run="py-empty", shard=1, shards=2,
                      target_classes=EMPTY_SHARD["target"], source_classes=EMPTY_SHARD["source"]) as empty:
        pass
    summaries["empty", 1] = empty.summary

    waited = cluster.kafka_run("scores", "--wait-count", "3", "--timeout", "300", "--json", check=False)
    assert waited.returncode == 0, waited.stderr + "\n" + cluster.log_tails()
    records = {record["run"]: record for record in map(json.loads, waited.stdout.splitlines())}
    files = {"py-whole": whole, "py-stream": stream, "py-empty": partial}
    return producer, summaries, records, files, whole_shards


def test_summaries_describe_what_was_published(published):
    _, summaries, _, _, _ = published
    assert summaries["whole", 0].locations == tuple(sorted(summaries["whole", 0].locations))
    assert [(c.first_row, c.row_count) for c in summaries["whole", 0].locations] == [
        (0, 2465), (2465, 2465), (4930, 1070)]  # (1,000,000 − 4,096) ÷ (100·4 + 4) rows a chunk
    stream = summaries["stream", 0]
    assert (stream.rows, stream.chunks, stream.eep_accuracy) == (9_000, 9, True)
    assert {c.row_count for c in stream.locations} == {1000}
    assert summaries["empty", 1].chunks == 0 and summaries["empty", 1].rows == 0
    # Manifests land where the Java client (and the Swift processes) put the run id: murmur2.
    for summary in summaries.values():
        assert summary.manifest_partition == wire.key_partition(summary.run, 4), summary.run


def test_every_final_score_equals_leep_score(cluster, published):
    _, _, records, files, _ = published
    assert set(records) == set(files)
    for run, (predictions, labels) in files.items():
        record = records[run]
        assert record["status"] == "final", record
        assert ("eep_accuracy" in record) == (run == "py-stream"), record
        assert_matches_leep_score(cluster, run, record, predictions, labels)
        assert record["model"] == "py-model"


def test_publishing_a_shard_again_changes_nothing(cluster, published):
    producer, _, records, _, whole_shards = published
    predictions, labels = whole_shards[1]
    again = producer.publish("py-model", "py-whole", np.load(predictions), np.load(labels), run="py-whole",
                             shard=1, shards=2)
    assert again.chunks == 3
    every = cluster.kafka_run("scores", "--follow", "--json", "--timeout", "8")
    mine = [record for record in map(json.loads, every.stdout.splitlines()) if record["run"] == "py-whole"]
    outcomes = [record for record in mine if record["status"] in ("final", "failed", "incomplete")]
    assert outcomes == [records["py-whole"]], outcomes
