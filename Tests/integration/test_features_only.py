"""Runs of features alone through the pipeline: source models without a classifier head (CLIP or
DINOv2 image encoders) give penultimate-layer features but no softmax outputs. A real broker,
two workers and an aggregator; runs published by `leep produce --features F --labels L` without
`--predictions` (in two shards), by the Python client's `publish(model, dataset, labels=…,
features=…)` and by its streaming `run().add(labels=…, features=…)`, beside a run of softmax
outputs alone.

The workers must turn the version-3 chunks into partials of feature statistics only (no joint
cells, nothing dead-lettered), and the run of softmax outputs must be scored as before. The
final records of the runs of features alone must carry LogME and the H-scores equal to the
independent float64 reference (Tests/reference/feature_reference.py) to 1e-8 relative, and no
LEEP, NCE or EEP accuracy."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
from collections import defaultdict

import jsonschema
import numpy as np
import pytest

from cluster import ROOT, assert_matches_leep_score, make_run, wait_for
from wire import read_topic

sys.path.insert(0, str(ROOT / "Tests" / "reference"))
sys.path.insert(0, str(ROOT / "clients" / "python" / "src"))
from feature_reference import feature_scores  # noqa: E402
from leepstream import LeepProducer  # noqa: E402

FEATURE_KEYS = ("logme", "hscore", "hscore_shrinkage", "ledoit_wolf_shrinkage")
SOFTMAX_KEYS = ("leep", "nce", "eep_accuracy")
DATASET = "features-only"


def make_features(directory, name: str, labels: np.ndarray, *, width: int, dtype, seed: int, offset: float = 0.0):
    """Features for `labels`: a class-dependent centre plus noise, around `offset`, so that the
    scores are far from trivial; saved as `name`.features.npy."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=0.8, size=(labels.max() + 1, width))
    features = (offset + centres[labels] + rng.normal(size=(len(labels), width))).astype(dtype)
    path = directory / f"{name}.features.npy"
    np.save(path, features)
    return path, features


def latest_records(cluster) -> dict[str, dict]:
    output = cluster.kafka_run("scores", "--json").stdout
    return {record["run"]: record for record in map(json.loads, output.splitlines())}


def partial_parts(cluster) -> dict[str, list[dict]]:
    """Every version-3 partial part on the runs topic, by run: its shape, its chunks and its
    part, read from the frame as docs/wire-format.md lays it out (kind 3)."""
    parts: dict[str, list[dict]] = defaultdict(list)
    for value, _ in read_topic(f"127.0.0.1:{cluster.port}", cluster.prefix + "runs", idle=2.0):
        if len(value) < 8 or value[:4] != b"LPST" or value[4] != 3 or value[5] != 3:
            continue
        offset, names = 8, []
        for _ in range(3):
            (length,) = struct.unpack_from("<H", value, offset)
            names.append(value[offset + 2:offset + 2 + length].decode())
            offset += 2 + length
        partial_id, y, z, d, samples, count = struct.unpack_from("<QIIIQI", value, offset)
        offset += 32
        chunks = [struct.unpack_from("<IQI", value, offset + 16 * i) for i in range(count)]
        offset += 16 * count
        index, total, _, cells, section = struct.unpack_from("<IIIIB", value, offset)
        parts[names[0]].append(dict(id=partial_id, target_classes=y, source_classes=z, feature_width=d,
                                    samples=samples, chunks=chunks, index=index, total=total, cells=cells,
                                    section=section))
    return parts


@pytest.fixture(scope="module")
def published(cluster, tmp_path_factory):
    """The four runs, published at once; returns {run: (features or None, labels, rows, paths)}."""
    directory = tmp_path_factory.mktemp("features-only")
    bootstrap = f"127.0.0.1:{cluster.port}"
    for index in range(2):
        cluster.start(f"worker{index}", "worker")
    cluster.start("aggregator", "aggregate", "--repair-after", "5")
    runs = {}

    # leep produce --features --labels, no --predictions: two shards of float32 features with a
    # large common offset.
    (_, labels_path), shards = make_run(directory, "cli", rows=12_000, source=2, target=6, dtype=np.float32, seed=81,
                                        shards=2)
    labels = np.load(labels_path)
    features_path, features = make_features(directory, "cli", labels, width=48, dtype=np.float32, seed=82, offset=1e3)
    bounds = np.linspace(0, len(labels), 3).astype(int)
    producers = []
    for shard, (_, shard_labels) in enumerate(shards):
        shard_features = directory / f"cli.{shard}.features.npy"
        np.save(shard_features, features[bounds[shard]:bounds[shard + 1]])
        producers.append(subprocess.Popen(
            [str(cluster.leep), "produce", "--model", "cli-encoder", "--dataset", DATASET, "--run", "run-cli",
             "--shard", str(shard), "--shards", "2", "--labels", str(shard_labels), "--features", str(shard_features),
             *cluster.common],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=cluster.env))
    runs["run-cli"] = (features, labels, dict(features=features_path, labels=labels_path))

    # A run of softmax outputs alone, published at the same time: it must be scored as today.
    (predictions_path, softmax_labels_path), _ = make_run(directory, "softmax", rows=5_000, source=30, target=5,
                                                          dtype=np.float32, seed=83)
    producers.append(subprocess.Popen(
        [str(cluster.leep), "produce", "--model", "softmax-head", "--dataset", DATASET, "--run", "run-softmax",
         "--predictions", str(predictions_path), "--labels", str(softmax_labels_path), *cluster.common],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=cluster.env))
    runs["run-softmax"] = (None, np.load(softmax_labels_path),
                           dict(predictions=predictions_path, labels=softmax_labels_path))

    # The Python client: publish(labels=…, features=…) with float16 features, and the stream.
    with LeepProducer(bootstrap, topic_prefix=cluster.prefix) as producer:
        labels = np.random.default_rng(84).integers(0, 5, size=8_000)
        _, features = make_features(directory, "client", labels, width=33, dtype=np.float16, seed=85)
        summary = producer.publish("client-encoder", DATASET, labels=labels, features=features, run="run-client")
        assert summary.source_classes == 0 and summary.feature_width == 33
        runs["run-client"] = (features, labels, {})

        labels = np.random.default_rng(86).integers(0, 4, size=9_000)
        _, features = make_features(directory, "stream", labels, width=20, dtype=np.float64, seed=87)
        with producer.run("stream-encoder", DATASET, run="run-stream", target_classes=4) as stream:
            for first in range(0, len(labels), 1_234):
                stream.add(labels=labels[first:first + 1_234], features=features[first:first + 1_234])
        runs["run-stream"] = (features, labels, {})

    for process in producers:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output
    return directory, runs


def test_workers_turn_features_alone_into_partials_of_feature_statistics(cluster, published):
    _, runs = published
    alone = {run: (features, labels) for run, (features, labels, _) in runs.items() if features is not None}

    def covered() -> dict[str, int]:
        parts = partial_parts(cluster)
        return {run: sum(rows for _, _, rows in {chunk for part in parts[run] for chunk in part["chunks"]})
                for run in alone}

    wait_for(lambda: all(covered()[run] == len(labels) for run, (_, labels) in alone.items()), 120,
             what="partials covering every row of the runs of features alone",
             diagnosis=lambda: f"{covered()}\n{cluster.log_tails()}")
    parts = partial_parts(cluster)
    for run, (features, labels) in alone.items():
        assert parts[run], run
        for part in parts[run]:
            # Y×0 = 0 joint cells: no section-0 part, only feature statistics (sections 1 to 4:
            # the moments, the class variances, the class or within-class scatters), numbered from 0.
            assert part["source_classes"] == 0 and part["section"] in (1, 2, 3, 4), (run, part)
            assert part["feature_width"] == features.shape[1] and part["target_classes"] == labels.max() + 1, (run, part)
            assert part["samples"] == sum(rows for _, _, rows in part["chunks"]), (run, part)
        by_partial = defaultdict(set)
        for part in parts[run]:
            by_partial[part["id"], part["total"]].add(part["index"])
        assert {part["section"] for part in parts[run]} >= {1, 2}, (run, "moments and class variances")
        assert all(indices == set(range(total)) for (_, total), indices in by_partial.items()), (run, by_partial)
    # The softmax run's partials are as before: joint cells, no features.
    assert {(part["section"], part["feature_width"]) for part in parts["run-softmax"]} == {(0, 0)}
    # Every chunk and every partial was read as a frame: nothing went to the dead-letter topic.
    letters = read_topic(f"127.0.0.1:{cluster.port}", cluster.prefix + "deadletter", idle=2.0)
    assert letters == [], [headers for _, headers in letters]


def test_a_run_of_softmax_outputs_alone_is_scored_as_today(cluster, published):
    _, runs = published
    _, _, paths = runs["run-softmax"]
    wait_for(lambda: latest_records(cluster).get("run-softmax", {}).get("status") in ("final", "failed"), 300,
             what="the run of softmax outputs alone", diagnosis=cluster.log_tails)
    record = latest_records(cluster)["run-softmax"]
    assert_matches_leep_score(cluster, "softmax-head", record, paths["predictions"], paths["labels"])
    assert not any(key in record for key in FEATURE_KEYS + ("feature_width",)), record
    jsonschema.validate(record, json.loads((ROOT / "docs/score-record.schema.json").read_text()))


def test_runs_of_features_alone_get_the_feature_scores_and_no_leep(cluster, published):
    _, runs = published
    alone = [run for run, (features, _, _) in runs.items() if features is not None]

    def outcomes() -> dict[str, str | None]:
        records = latest_records(cluster)
        return {run: records.get(run, {}).get("status") for run in alone}

    wait_for(lambda: all(status in ("final", "failed") for status in outcomes().values()), 120,
             what="final records of the runs of features alone",
             diagnosis=lambda: f"{outcomes()}\n{cluster.log_tails()}")
    records = latest_records(cluster)
    schema = json.loads((ROOT / "docs/score-record.schema.json").read_text())
    for run in alone:
        features, labels, paths = runs[run]
        record = records[run]
        assert record["status"] == "final", record
        jsonschema.validate(record, schema)
        assert not any(key in record for key in SOFTMAX_KEYS), record
        expected = feature_scores(features, labels)
        for key in FEATURE_KEYS:
            assert math.isclose(record[key], expected[key], rel_tol=1e-8, abs_tol=1e-12), (run, key, record[key],
                                                                                        expected[key])
        assert record["feature_width"] == features.shape[1] and record["n"] == len(labels), record
        assert record["target_classes"] == labels.max() + 1, record
        if paths:
            # The same numbers as `leep score --features` on the same files.
            local = json.loads(cluster.leep_run("score", "--features", str(paths["features"]), "--labels",
                                                str(paths["labels"]), "--json").stdout)
            for key in FEATURE_KEYS:
                assert math.isclose(record[key], local[key], rel_tol=1e-9), (key, record[key], local[key])
    # The leaderboard shows them beside the run with softmax outputs, and ranks them by a
    # feature metric.
    board = cluster.kafka_run("scores", "--dataset", DATASET).stdout
    for model in ("cli-encoder", "client-encoder", "stream-encoder", "softmax-head"):
        assert model in board, board
    board = cluster.kafka_run("scores", "--dataset", DATASET, "--rank-by", "logme").stdout
    ranked = [line.split()[1] for line in board.splitlines() if line[:4].strip().isdigit()]
    encoders = [records[run]["model"] for run in sorted(alone, key=lambda run: -records[run]["logme"])]
    assert [model for model in ranked if model in encoders] == encoders, board


def test_produce_refuses_bad_files_of_features_alone_before_publishing(cluster, published):
    directory, _ = published
    labels = np.random.default_rng(88).integers(0, 3, size=300)
    labels_path = directory / "refused.labels.npy"
    np.save(labels_path, labels)
    _, features = make_features(directory, "refused", labels, width=4, dtype=np.float32, seed=89)
    nan = features.copy()
    nan[123, 2] = np.nan
    cases = {
        "nan": (nan, labels_path, [], "row 123: feature 2 is nan; features must be finite"),
        "rows": (features[:299], labels_path, [], f"has 299 rows but {labels_path} has 300"),
        "1-d": (features[:, 0], labels_path, [], "expected a 2-D array, got shape (300,)"),
        "label": (features, labels_path, ["--target-classes", "2"], "label 2 is outside [0, 2)"),
    }
    for name, (array, labels_file, options, message) in cases.items():
        path = directory / f"refused-{name}.features.npy"
        np.save(path, array)
        result = cluster.kafka_run("produce", "--model", "refused", "--dataset", "refused", "--run", f"run-refused-{name}",
                                   "--labels", str(labels_file), "--features", str(path), *options, check=False)
        assert result.returncode != 0, (name, result.stdout)
        assert message in result.stderr, (name, result.stderr)
        named = str(labels_file) if name == "label" else str(path)
        assert named in result.stderr, (name, result.stderr)
    assert not any(run.startswith("run-refused") for run in latest_records(cluster))
