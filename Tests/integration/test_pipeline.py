"""The distributed pipeline end to end: a real broker, 3 worker and 2 aggregator processes,
runs of several shapes produced concurrently (some in shards). Every final score must equal
`leep score` on the same data to 1e-9 relative, every score record must validate against the
published schema, and a subscriber that starts after the runs finished must still see them all."""

from __future__ import annotations

import json
import subprocess

import jsonschema
import numpy as np
import pytest

from cluster import ROOT, assert_matches_leep_score, make_run

RUNS = {
    # name: shape and how it is produced
    "imagenet1k-like": dict(rows=50_000, source=1000, target=100, dtype=np.float32, seed=1, shards=2),
    "imagenet21k-like": dict(rows=2_000, source=21_843, target=50, dtype=np.float32, seed=2, shards=1),
    "binary": dict(rows=20_000, source=10, target=2, dtype=np.float64, seed=3, shards=3),
    "half-precision": dict(rows=10_000, source=50, target=10, dtype=np.float16, seed=4, shards=1),
    "empty-columns": dict(rows=15_000, source=200, target=20, dtype=np.float32, seed=5, shards=1, empty_columns=13),
    # Each shard sees only some labels: the run's Y is the largest over its shards.
    "uneven-shards": dict(rows=6_000, source=64, target=7, dtype=np.float64, seed=6, shards=2,
                          label_cap_per_shard=[4, 7]),
}
# Runs whose producer asks for EEP accuracy (pass 2 with Y dot products a row). Only shard 0 of
# "uneven-shards" asks: a run computes it when any of its manifests asks.
EEP_ACCURACY = {"imagenet1k-like": "all", "binary": "all", "uneven-shards": "shard 0"}


@pytest.fixture(scope="module")
def scored(cluster, tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    runs = {name: make_run(data, name, **spec) for name, spec in RUNS.items()}
    for index in range(3):
        cluster.start(f"worker{index}", "worker")
    for index in range(2):
        cluster.start(f"aggregator{index}", "aggregate", "--repair-after", "5")
    producers = []
    for name, (_, shards) in runs.items():
        for shard, (predictions, labels) in enumerate(shards):
            producers.append(subprocess.Popen(
                [str(cluster.leep), "produce", "--model", name, "--dataset", f"set-{RUNS[name]['target']}",
                 "--run", f"run-{name}", "--shard", str(shard), "--shards", str(len(shards)),
                 "--predictions", str(predictions), "--labels", str(labels), *cluster.common,
                 *(["--eep-accuracy"] if EEP_ACCURACY.get(name) == "all" or (EEP_ACCURACY.get(name) and shard == 0) else [])],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=cluster.env))
    for producer in producers:
        output, _ = producer.communicate(timeout=600)
        assert producer.returncode == 0, output
    waited = cluster.kafka_run("scores", "--wait-count", str(len(RUNS)), "--timeout", "600", "--json", check=False)
    assert waited.returncode == 0, waited.stderr + "\n" + cluster.log_tails()
    records = [json.loads(line) for line in waited.stdout.splitlines()]
    return runs, {record["run"]: record for record in records}


def test_every_final_score_equals_leep_score(cluster, scored):
    runs, records = scored
    for name, ((predictions, labels), _) in runs.items():
        record = records[f"run-{name}"]
        assert ("eep_accuracy" in record) == (name in EEP_ACCURACY), (name, record)
        assert_matches_leep_score(cluster, name, record, predictions, labels)
        assert record["model"] == name


def test_score_records_validate_and_late_subscriber_sees_everything(cluster, scored):
    schema = json.loads((ROOT / "docs/score-record.schema.json").read_text())
    # A subscriber that starts now, after every run finished, reads the topic from its start.
    every = cluster.kafka_run("scores", "--follow", "--json", "--timeout", "8")
    records = [json.loads(line) for line in every.stdout.splitlines()]
    assert records, "the late subscriber saw nothing"
    for record in records:
        jsonschema.validate(record, schema)
    finals = {record["run"] for record in records if record["status"] == "final"}
    assert finals == {f"run-{name}" for name in RUNS}
    statuses = {record["status"] for record in records}
    assert {"progress", "bracketed"} <= statuses, f"progress and bracketed records were not all published: {statuses}"
    board = cluster.kafka_run("scores")
    for name in RUNS:
        assert name in board.stdout
