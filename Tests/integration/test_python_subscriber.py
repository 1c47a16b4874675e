"""The Python client's subscriber (`leepstream.ScoreSubscriber`) against a real broker, reading
what real `leep worker` and `leep aggregate` processes publish:

* every record of the score topic, read raw with confluent-kafka, equals the typed record the
  subscriber yields for it, field for field, in the same order;
* `wait` returns each run's final record (its LEEP equal to `leep score` on the same rows and
  inside its bracket), a failed run's record with its reason, and raises `RunTimeout` naming a
  run that never comes;
* a run's history reads `bracketed` (pass 1 merged: the exact bracket) before `final`, which
  keeps the same bracket;
* a late record of a closed run (an aggregator replaying) does not undo its outcome;
* a subscriber started after the runs ended sees every data set's latest records; the
  leaderboard ranks them, marks the models that cannot win, and becomes a DataFrame;
* `watch` yields the board once caught up, then again when a new model's run lands;
* examples/model-zoo/pick_best.py picks the best of a small zoo end to end;
* examples/model-zoo/early_stop.py stops candidates whose streaming estimate is below the best
  certified bound, and still chooses the model every forward pass would choose."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from cluster import ROOT, assert_matches_leep_score

sys.path.insert(0, str(ROOT / "clients" / "python" / "src"))
from leepstream import LeepProducer, RunTimeout, ScoreRecord, ScoreSubscriber  # noqa: E402

DATASET = "sub-zoo"
#: Model → how strongly its argmax predicts the label: three clearly ordered LEEPs.
MODELS = {"sub-weak": 0.3, "sub-mid": 1.5, "sub-strong": 4.0}
ROWS, SOURCE, TARGET = 6_000, 40, 8


def softmax_run(signal: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, TARGET, size=ROWS)
    logits = rng.normal(size=(ROWS, SOURCE))
    logits[np.arange(ROWS), (labels * 5) % SOURCE] += signal
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32), labels.astype(np.int64)


@pytest.fixture(scope="module")
def zoo(cluster, tmp_path_factory):
    data = tmp_path_factory.mktemp("subscriber")
    for index in range(2):
        # A quarter of each chunk's rows sampled, for the estimates of examples/model-zoo/early_stop.py.
        cluster.start(f"worker{index}", "worker", "--row-sample-rate", "0.25")
    cluster.start("aggregator", "aggregate", "--repair-after", "5")
    brokers = f"127.0.0.1:{cluster.port}"
    producer = LeepProducer(brokers, topic_prefix=cluster.prefix)
    files = {}
    for seed, (model, signal) in enumerate(MODELS.items()):
        theta, labels = softmax_run(signal, seed)
        files[model] = (data / f"{model}.p.npy", data / f"{model}.l.npy")
        np.save(files[model][0], theta)
        np.save(files[model][1], labels)
        producer.publish(model, DATASET, theta, labels, run=f"{model}@{DATASET}", rows_per_chunk=1000)
    # A run id reused for another pair: the aggregator fails it, with the reason.
    theta, labels = softmax_run(1.0, 9)
    producer.publish("sub-left", "sub-other", theta[:3000], labels[:3000], run="sub-bad", shard=0, shards=2)
    producer.publish("sub-right", "sub-other", theta[3000:], labels[3000:], run="sub-bad", shard=1, shards=2)
    subscriber = ScoreSubscriber(brokers, topic_prefix=cluster.prefix)
    outcomes = {run: subscriber.wait(run, timeout=300) for run in [f"{m}@{DATASET}" for m in MODELS] + ["sub-bad"]}
    return cluster, producer, subscriber, outcomes, files


def raw_scores(cluster) -> list[tuple[int, int, dict]]:
    """Every record of the score topic, as confluent-kafka reads it: (partition, offset, JSON),
    up to the end-of-partition event of each partition (the broker's high watermark from
    ListOffsets is not to be trusted: Tansu's counts batches)."""
    consumer = Consumer({"bootstrap.servers": f"127.0.0.1:{cluster.port}", "group.id": "raw-reader",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    topic = f"{cluster.prefix}scores"
    partitions = set(consumer.list_topics(topic, timeout=30).topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    records = []
    while partitions:
        message = consumer.poll(10)
        assert message is not None, f"the score topic did not reach the end of partitions {partitions}"
        if message.error() is not None:
            assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
            partitions.discard(message.partition())
            continue
        records.append((message.partition(), message.offset(), json.loads(message.value())))
    consumer.close()
    return records


def test_records_read_back_field_for_field(zoo):
    cluster, _, subscriber, _, _ = zoo
    raw = raw_scores(cluster)
    typed = list(subscriber.records(until_caught_up=True))
    assert len(typed) == len(raw) >= 2 * len(MODELS) + 1
    by_place = {(r.partition, r.offset): r for r in typed}
    for partition, offset, value in raw:
        record = by_place[partition, offset]
        assert record.as_dict() == value, (partition, offset)
        assert isinstance(record, ScoreRecord) and record.timestamp is not None
    # Filters.
    assert {r.model for r in subscriber.records(dataset=DATASET, until_caught_up=True)} == set(MODELS)
    assert {r.run for r in subscriber.records(model="sub-mid", until_caught_up=True)} == {f"sub-mid@{DATASET}"}


def test_wait_returns_outcomes_exact_and_inside_their_bracket(zoo):
    cluster, _, _, outcomes, files = zoo
    for model in MODELS:
        record = outcomes[f"{model}@{DATASET}"]
        assert record.status == "final" and record.model == model and record.n == ROWS
        assert_matches_leep_score(cluster, model, record.as_dict(), *files[model])
        assert record.leep_lower <= record.leep <= record.leep_upper
    bad = outcomes["sub-bad"]
    assert bad.status == "failed" and bad.is_outcome and "sub-left" in bad.reason and "sub-right" in bad.reason


def test_wait_names_a_run_that_never_comes(zoo):
    _, _, subscriber, _, _ = zoo
    with pytest.raises(RunTimeout, match="run 'sub-nobody' has no outcome after 2 s: no record of it was seen"):
        subscriber.wait("sub-nobody", timeout=2)


def test_a_runs_history_is_bracketed_then_final(zoo):
    _, _, subscriber, outcomes, _ = zoo
    for model in MODELS:
        history = list(subscriber.records(run=f"{model}@{DATASET}", until_caught_up=True))
        statuses = [r.status for r in history]
        assert statuses[-1] == "final" and statuses.count("bracketed") == 1, statuses
        bracketed = history[statuses.index("bracketed")]
        final = outcomes[f"{model}@{DATASET}"]
        assert (bracketed.leep_lower, bracketed.leep_upper) == (final.leep_lower, final.leep_upper)
        assert bracketed.leep is None and bracketed.n == ROWS


def test_a_late_record_does_not_undo_an_outcome_and_a_late_subscriber_sees_every_latest_score(zoo):
    cluster, _, _, outcomes, _ = zoo
    # An aggregator replaying a closed run republishes a progress record of it.
    late = {"model": "sub-mid", "dataset": DATASET, "run": f"sub-mid@{DATASET}", "status": "progress", "pass": 2}
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{cluster.port}"})
    producer.produce(f"{cluster.prefix}scores", key=json.dumps(["sub-mid", DATASET], separators=(",", ":")),
                     value=json.dumps(late))
    assert producer.flush(30) == 0
    fresh = ScoreSubscriber(f"127.0.0.1:{cluster.port}", topic_prefix=cluster.prefix)
    latest = {(r.model, r.dataset): r for r in fresh.latest()}
    assert latest[("sub-mid", DATASET)] == outcomes[f"sub-mid@{DATASET}"]
    assert {key for key in latest if key[1] == DATASET} == {(m, DATASET) for m in MODELS}
    assert latest[("sub-left", "sub-other")].status == "failed"


def test_the_leaderboard_ranks_and_judges(zoo):
    _, _, subscriber, outcomes, _ = zoo
    board = subscriber.leaderboard(DATASET)
    expected = sorted(MODELS, key=lambda m: -outcomes[f"{m}@{DATASET}"].leep)
    assert [e.model for e in board] == expected and [e.rank for e in board] == [1, 2, 3]
    assert expected[0] == "sub-strong"
    assert [e.dominated_by for e in board] == [None, "sub-strong", "sub-strong"]
    assert board.contenders == ["sub-strong"]
    frame = board.to_pandas()
    assert list(frame["model"]) == expected and list(frame["dominated_by"][1:]) == ["sub-strong", "sub-strong"]
    by_nce = subscriber.leaderboard(DATASET, rank_by="nce")
    assert [e.value for e in by_nce] == sorted((outcomes[f"{m}@{DATASET}"].nce for m in MODELS), reverse=True)


def test_watch_yields_the_board_again_when_a_run_lands(zoo):
    cluster, producer, subscriber, _, _ = zoo
    boards = subscriber.watch(DATASET, timeout=300)
    first = next(boards)
    assert {e.model for e in first} == set(MODELS)
    theta, labels = softmax_run(8.0, 42)
    producer.publish("sub-new", DATASET, theta, labels, run=f"sub-new@{DATASET}")
    for board in boards:
        new = [e for e in board if e.model == "sub-new"]
        if new and new[0].record.status == "final":
            assert board.best.model == "sub-new"
            break
    else:
        pytest.fail("watch ended before the new run's final record")


def test_the_model_zoo_example_picks_the_aligned_model(zoo):
    cluster = zoo[0]
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "model-zoo" / "pick_best.py"), "--brokers", f"127.0.0.1:{cluster.port}",
         "--topic-prefix", cluster.prefix, "--samples", "3000", "--timeout", "300"],
        capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr + cluster.log_tails()
    assert "fine-tune proto-aligned" in result.stdout, result.stdout
    assert "cannot win: below proto-aligned" in result.stdout, result.stdout


def test_the_early_stop_example_saves_forward_passes_and_chooses_the_same_model(zoo):
    cluster = zoo[0]
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "model-zoo" / "early_stop.py"), "--brokers", f"127.0.0.1:{cluster.port}",
         "--topic-prefix", cluster.prefix, "--samples", "2000", "--batch", "100", "--pause", "0.2",
         "--order", "reversed"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr + cluster.log_tails()
    assert "chosen: proto-aligned; with every forward pass: proto-aligned (the same)" in result.stdout, result.stdout
    saved = [line for line in result.stdout.splitlines() if line.startswith("forward passes:")]
    assert saved and " 0 of 5 candidates stopped" not in saved[0], result.stdout
