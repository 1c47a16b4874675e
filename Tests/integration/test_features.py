"""The feature metrics through the pipeline — LogME, the H-scores, GBC, TransRate, and SFDA with its
two task passes: a real broker, two workers
and an aggregator; runs published with features by `leep produce --features` (in two shards), by
the Python client's `publish(features=…)` and by its streaming `run().add(…, features=…)`. Every
final record must carry every metric equal to the independent float64 NumPy reference
(Tests/reference/feature_reference.py) to 1e-8 relative, and LEEP and NCE equal to `leep score`
to 1e-9, in one record. Runs whose features are bad fail alone, naming the chunk or the row; a
worker killed mid-stream loses nothing and counts nothing twice (its uncommitted chunks are
consumed again by the other; the repair path with features is TaskRunnerTests')."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time

import jsonschema
import numpy as np
import pytest

from cluster import ROOT, assert_matches_leep_score, make_run, wait_for
from wire import RawProducer

sys.path.insert(0, str(ROOT / "Tests" / "reference"))
sys.path.insert(0, str(ROOT / "clients" / "python" / "src"))
from feature_reference import feature_scores  # noqa: E402
from leepstream import LeepProducer, wire as client_wire  # noqa: E402

FEATURE_KEYS = ("logme", "hscore", "hscore_shrinkage", "ledoit_wolf_shrinkage", "gbc_diagonal", "gbc_spherical",
                "transrate", "sfda", "sfda_shrinkage")


def make_features(directory, name: str, labels_path, *, width: int, dtype, seed: int, offset: float = 0.0):
    """Features for the rows of `labels_path`: a class-dependent centre plus noise, around
    `offset`, so that the scores are far from trivial."""
    labels = np.load(labels_path)
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=0.8, size=(labels.max() + 1, width))
    features = (offset + centres[labels] + rng.normal(size=(len(labels), width))).astype(dtype)
    path = directory / f"{name}.features.npy"
    np.save(path, features)
    return path


def assert_feature_scores(record: dict, features: np.ndarray, labels: np.ndarray) -> None:
    assert record["status"] == "final", record
    expected = feature_scores(features, labels)
    for key in FEATURE_KEYS:
        if expected[key] is None:  # undefined for these data: null, with the reason
            assert record[key] is None and record.get("unscored"), (record["run"], key, record)
            continue
        assert math.isclose(record[key], expected[key], rel_tol=1e-8, abs_tol=1e-12), (record["run"], key, record[key], expected[key])
    assert record["feature_width"] == features.shape[1]


def latest_records(cluster) -> dict[str, dict]:
    output = cluster.kafka_run("scores", "--json").stdout
    return {record["run"]: record for record in map(json.loads, output.splitlines())}


@pytest.fixture(scope="module")
def scored(cluster, tmp_path_factory):
    directory = tmp_path_factory.mktemp("features")
    bootstrap = f"127.0.0.1:{cluster.port}"
    for index in range(2):
        cluster.start(f"worker{index}", "worker")
    cluster.start("aggregator", "aggregate", "--repair-after", "5")
    runs = {}

    # leep produce --features, two shards of float32 features with a large common offset.
    (predictions, labels), shards = make_run(directory, "cli", rows=12_000, source=40, target=6, dtype=np.float32,
                                             seed=61, shards=2)
    features = make_features(directory, "cli", labels, width=48, dtype=np.float32, seed=62, offset=1e3)
    all_features = np.load(features)
    bounds = np.linspace(0, len(all_features), 3).astype(int)
    producers = []
    for shard, (shard_predictions, shard_labels) in enumerate(shards):
        shard_features = directory / f"cli.{shard}.features.npy"
        np.save(shard_features, all_features[bounds[shard]:bounds[shard + 1]])
        producers.append(subprocess.Popen(
            [str(cluster.leep), "produce", "--model", "cli", "--dataset", "features", "--run", "run-cli",
             "--shard", str(shard), "--shards", "2", "--predictions", str(shard_predictions),
             "--labels", str(shard_labels), "--features", str(shard_features), "--eep-accuracy", *cluster.common],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=cluster.env))
    runs["run-cli"] = (predictions, labels, all_features)

    # The Python client: publish(features=…) with float16 features, and the streaming API.
    prefix = cluster.prefix
    with LeepProducer(bootstrap, topic_prefix=prefix) as producer:
        (predictions, labels), _ = make_run(directory, "client", rows=8_000, source=25, target=5, dtype=np.float32, seed=63)
        features = np.load(make_features(directory, "client", labels, width=33, dtype=np.float16, seed=64))
        producer.publish("client", "features", np.load(predictions), np.load(labels), run="run-client",
                         features=features)
        runs["run-client"] = (predictions, labels, features)

        (predictions, labels), _ = make_run(directory, "stream", rows=9_000, source=30, target=4, dtype=np.float64, seed=65)
        features = np.load(make_features(directory, "stream", labels, width=20, dtype=np.float64, seed=66))
        theta, y = np.load(predictions), np.load(labels)
        with producer.run("stream", "features", run="run-stream", target_classes=4) as stream:
            for first in range(0, len(y), 1_234):
                stream.add(theta[first:first + 1_234], y[first:first + 1_234], features=features[first:first + 1_234])
        runs["run-stream"] = (predictions, labels, features)

    for producer in producers:
        output, _ = producer.communicate(timeout=300)
        assert producer.returncode == 0, output
    waited = cluster.kafka_run("scores", "--wait-count", str(len(runs)), "--timeout", "300", "--json", check=False)
    assert waited.returncode == 0, waited.stderr + "\n" + cluster.log_tails()
    records = {record["run"]: record for record in map(json.loads, waited.stdout.splitlines())}
    return directory, bootstrap, runs, records


def test_every_run_gets_leep_and_the_feature_scores_in_one_record(cluster, scored):
    _, _, runs, records = scored
    schema = json.loads((ROOT / "docs/score-record.schema.json").read_text())
    for run, (predictions, labels, features) in runs.items():
        record = records[run]
        jsonschema.validate(record, schema)
        assert_matches_leep_score(cluster, run, record, predictions, labels)
        assert_feature_scores(record, features, np.load(labels))
        # The same numbers as `leep score --features` on the same files.
        if run == "run-cli":
            path = predictions.parent / "cli.features.npy"
            local = json.loads(cluster.leep_run("score", "--features", str(path), "--labels", str(labels), "--json").stdout)
            for key in FEATURE_KEYS:
                assert math.isclose(record[key], local[key], rel_tol=1e-9), (key, record[key], local[key])


def test_the_leaderboard_shows_and_ranks_by_the_feature_scores(cluster, scored):
    board = cluster.kafka_run("scores", "--dataset", "features", "--rank-by", "logme").stdout
    assert "ranked by logme" in board and all(key in board for key in ("logme", "hscore", "gbc_diagonal", "transrate")), board
    _, _, _, records = scored
    order = [line.split()[1] for line in board.splitlines() if line[:4].strip().isdigit()]
    expected = sorted(records, key=lambda run: -records[run]["logme"])
    assert order == [records[run]["model"] for run in expected], (order, board)


def test_bad_features_fail_only_their_run_naming_the_chunk_or_row(cluster, scored):
    directory, bootstrap, _, _ = scored
    (predictions, labels), shards = make_run(directory, "bad", rows=2_000, source=10, target=3, dtype=np.float32,
                                             seed=67, shards=2)
    wide = make_features(directory, "bad-wide", shards[0][1], width=12, dtype=np.float32, seed=68)
    narrow = make_features(directory, "bad-narrow", shards[1][1], width=11, dtype=np.float32, seed=69)

    def produce(run, shard, features):
        shard_predictions, shard_labels = shards[shard]
        cluster.kafka_run("produce", "--model", run, "--dataset", "bad-features", "--run", run, "--shard", str(shard),
                          "--shards", "2", "--predictions", str(shard_predictions), "--labels", str(shard_labels),
                          *(["--features", str(features)] if features else []))

    # Shards of one run with features of different widths; a shard without features.
    produce("run-widths", 0, wide)
    produce("run-widths", 1, narrow)
    produce("run-missing", 0, wide)
    produce("run-missing", 1, None)
    # One sample: LEEP exists, LogME and the H-scores do not; the run fails saying so.
    theta1, y1, phi1 = (directory / "one.predictions.npy", directory / "one.labels.npy", directory / "one.features.npy")
    np.save(theta1, np.load(shards[0][0])[:1])
    np.save(y1, np.load(shards[0][1])[:1])
    np.save(phi1, np.load(wide)[:1])
    cluster.kafka_run("produce", "--model", "run-one", "--dataset", "bad-features", "--run", "run-one",
                      "--predictions", str(theta1), "--labels", str(y1), "--features", str(phi1))
    # A chunk whose features hold a NaN, published around the producer's checks (a foreign
    # producer): the worker refuses it, naming the row and the feature.
    theta, y = np.load(shards[0][0]), np.load(shards[0][1])
    phi = np.load(wide)
    phi[17, 5] = np.nan
    producer = RawProducer(bootstrap)
    frame = client_wire.encode_chunk("run-nan", "run-nan", "bad-features", shard=0, shard_count=1, first_row=0,
                                     target_classes=3, labels=y, probabilities=theta, features=phi)
    [(partition, offset)] = producer.send(cluster.prefix + "chunks", [frame])
    manifest = client_wire.encode_manifest(
        "run-nan", "run-nan", "bad-features", shard=0, shard_count=1, source_classes=10, target_classes=3,
        shard_rows=len(y), total_chunks=1, part_index=0, part_count=1, chunks=[(0, len(y), partition, offset)],
        feature_width=12)
    producer.send(cluster.prefix + "runs", [manifest], key="run-nan")

    def outcomes():
        records = latest_records(cluster)
        return {run: records.get(run, {}).get("status") for run in ("run-widths", "run-missing", "run-nan", "run-one")}

    expected = {"run-widths": "failed", "run-missing": "failed", "run-nan": "failed", "run-one": "final"}
    wait_for(lambda: outcomes() == expected, 120,
             what="the three bad runs failed and the one-sample run is final",
             diagnosis=lambda: f"{outcomes()}\n{cluster.log_tails()}")
    records = latest_records(cluster)
    assert "features a row, its run's manifest" in records["run-widths"]["reason"] \
        or "the run has 12" in records["run-widths"]["reason"], records["run-widths"]
    assert "no features" in records["run-missing"]["reason"] or "none" in records["run-missing"]["reason"], \
        records["run-missing"]
    assert "row 17: feature 5 is nan; features must be finite" in records["run-nan"]["reason"], records["run-nan"]
    # One sample is no bad input: LEEP is defined, every covariance metric is null with its reason.
    one = records["run-one"]
    for key in ("logme", "hscore", "hscore_shrinkage"):
        assert one[key] is None and "1 sample" in one["unscored"][key], one
    assert one["gbc_diagonal"] is None and "1 class with samples" in one["unscored"]["gbc_diagonal"], one
    assert isinstance(one["leep"], float), one
    # Nothing else was affected: the good runs are still final.
    assert all(records[run]["status"] == "final" for run in ("run-cli", "run-client", "run-stream"))


def test_produce_refuses_bad_feature_files_before_publishing(cluster, scored):
    directory, _, _, _ = scored
    (predictions, labels), _ = make_run(directory, "refused", rows=300, source=5, target=2, dtype=np.float32, seed=70)
    features = np.load(make_features(directory, "refused", labels, width=4, dtype=np.float32, seed=71))
    cases = {}
    nan = features.copy()
    nan[123, 2] = np.nan
    cases["nan"] = (nan, "row 123: feature 2 is nan; features must be finite")
    cases["rows"] = (features[:299], "has 299 rows but")
    cases["1-d"] = (features[:, 0], "expected a 2-D array, got shape (300,)")
    for name, (array, message) in cases.items():
        path = directory / f"refused-{name}.features.npy"
        np.save(path, array)
        result = cluster.kafka_run("produce", "--model", "refused", "--dataset", "refused", "--run", f"run-refused-{name}",
                                   "--predictions", str(predictions), "--labels", str(labels), "--features", str(path),
                                   check=False)
        assert result.returncode != 0, (name, result.stdout)
        assert str(path) in result.stderr and message in result.stderr, (name, result.stderr)
    assert not any(run.startswith("run-refused") for run in latest_records(cluster))


def test_a_worker_killed_mid_stream_loses_and_doubles_nothing(fresh_cluster, tmp_path, report):
    cluster = fresh_cluster
    (predictions, labels), _ = make_run(tmp_path, "killed", rows=60_000, source=50, target=8, dtype=np.float32, seed=72)
    features_path = make_features(tmp_path, "killed", labels, width=256, dtype=np.float32, seed=73)
    # Partials wait 3 s while chunks keep coming: a worker killed 1 s into the run has consumed
    # chunks whose sums it never published (test_faults.py's scenario, with features).
    for index in range(2):
        cluster.start(f"worker{index}", "worker", "--flush-interval", "3")
    cluster.start("aggregator", "aggregate", "--repair-after", "3")
    for index in range(2):
        wait_for(lambda: "partitions assigned" in cluster.logs[f"worker{index}"].read_text(errors="replace"), 60,
                 what=f"worker{index} assigned")
    producer = subprocess.Popen(
        [str(cluster.leep), "produce", "--model", "killed", "--dataset", "features", "--run", "run-killed",
         "--predictions", str(predictions), "--labels", str(labels), "--features", str(features_path),
         "--chunk-rows", "100", *cluster.common],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=cluster.env)
    time.sleep(0.5)
    cluster.stop("worker0", signal.SIGKILL)
    output, _ = producer.communicate(timeout=300)
    assert producer.returncode == 0, output
    waited = cluster.kafka_run("scores", "--wait-count", "1", "--timeout", "300", "--json", check=False)
    assert waited.returncode == 0, waited.stderr + "\n" + cluster.log_tails()
    record = {r["run"]: r for r in map(json.loads, waited.stdout.splitlines())}["run-killed"]
    assert_matches_leep_score(cluster, "killed", record, predictions, labels)
    assert_feature_scores(record, np.load(features_path), np.load(labels))
    report(f"[features: kill -9 worker mid-stream, its chunks re-consumed by the other] final and exact (LogME, H-scores to 1e-8, "
           f"LEEP to 1e-9); chunks repaired: {record.get('chunks_repaired', 0)}, "
           f"partials dropped: {record.get('partials_dropped', 0)}")
