"""LeepProducer against a stand-in for confluent_kafka.Producer: what is sent, in which order,
where chunks are cut, and what is refused before anything is sent. The real broker is
exercised by Tests/integration/test_python_client.py."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

import leepstream.producer
from leepstream import DeliveryError, InvalidInput, LeepProducer, wire

PARTITIONS = {"chunks": 8, "runs": 4}


class Message:
    def __init__(self, partition: int, offset: int):
        self._partition, self._offset = partition, offset

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


class FakeClient:
    """Delivers on poll/flush like librdkafka: null keys round robin, keys by murmur2."""

    instances: list[FakeClient] = []

    def __init__(self, config):
        self.config = config
        self.records: list[tuple[str, bytes | None, bytes]] = []
        self.pending = []
        self.offsets: dict[tuple[str, int], int] = defaultdict(int)
        self.fail_when = lambda topic, value: False
        self.queue_full_once = False
        FakeClient.instances.append(self)

    def produce(self, topic, value, key=None, on_delivery=None):
        if self.queue_full_once:
            self.queue_full_once = False
            raise BufferError("Local: Queue full")
        count = PARTITIONS[topic.rsplit(".", 1)[1]]
        partition = len(self.records) % count if key is None else wire.key_partition(key, count)
        self.records.append((topic, key, value))
        self.pending.append((topic, partition, value, on_delivery))

    def poll(self, timeout=0):
        pending, self.pending = self.pending, []
        for topic, partition, value, callback in pending:
            if self.fail_when(topic, value):
                callback("Broker: Message size too large", None)
                continue
            offset = self.offsets[topic, partition]
            self.offsets[topic, partition] += 1
            callback(None, Message(partition, offset))
        return len(pending)

    def flush(self, timeout=None):
        self.poll()
        return 0


@pytest.fixture
def producer(monkeypatch):
    FakeClient.instances.clear()
    monkeypatch.setattr(leepstream.producer, "Producer", FakeClient)
    return LeepProducer("127.0.0.1:1", topic_prefix="t.")


def client() -> FakeClient:
    return FakeClient.instances[-1]


def data(rows: int, z: int = 5, y: int = 3, dtype=np.float32, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(z), size=rows).astype(dtype), rng.integers(0, y, size=rows)


def sent(topic: str) -> list[tuple[bytes | None, bytes]]:
    return [(key, value) for t, key, value in client().records if t == topic]


def test_configuration(monkeypatch, producer):
    config = client().config
    assert config["partitioner"] == "murmur2_random" and config["enable.idempotence"] is True
    assert config["bootstrap.servers"] == "127.0.0.1:1" and config["message.max.bytes"] == 1_100_000
    LeepProducer("b", config={"linger.ms": 50, "security.protocol": "SSL"})
    assert client().config["linger.ms"] == 50 and client().config["security.protocol"] == "SSL"
    with pytest.raises(ValueError, match="murmur2_random"):
        LeepProducer("b", config={"partitioner": "consistent_random"})


def test_publish_chunks_then_manifest(producer):
    theta, labels = data(23)
    summary = producer.publish("m", "d", theta, labels, run="r", rows_per_chunk=5, eep_accuracy=True)
    chunks = [wire.decode_chunk(value) for key, value in sent("t.chunks")]
    assert all(key is None for key, _ in sent("t.chunks"))
    assert [(c.first_row, c.row_count) for c in chunks] == [(0, 5), (5, 5), (10, 5), (15, 5), (20, 3)]
    np.testing.assert_array_equal(np.concatenate([c.probabilities for c in chunks]), theta)
    np.testing.assert_array_equal(np.concatenate([c.labels for c in chunks]), labels)
    assert {(c.target_classes, c.shard, c.shard_count) for c in chunks} == {(int(labels.max()) + 1, 0, 1)}
    [(key, value)] = sent("t.runs")
    assert key == b"r" and client().records[-1][0] == "t.runs"  # the manifest goes last
    manifest = wire.decode_manifest(value)
    assert manifest.eep_accuracy and manifest.shard_rows == 23 and manifest.total_chunks == 5
    assert [(c.first_row, c.row_count) for c in manifest.chunks] == [(c.first_row, c.row_count) for c in chunks]
    assert manifest.chunks == summary.locations
    assert [c.partition for c in manifest.chunks] == [0, 1, 2, 3, 4]
    assert (summary.rows, summary.chunks, summary.rows_per_chunk, summary.manifest_parts) == (23, 5, 5, 1)
    assert summary.manifest_partition == wire.key_partition("r", 4)


def test_default_chunking_and_run_id(producer):
    theta, labels = data(600, z=1000, y=10)
    summary = producer.publish("vit-b/16", "pets", theta, labels)
    assert summary.rows_per_chunk == 248 and summary.chunks == 3
    model, dataset, suffix = summary.run.split("@")
    assert (model, dataset, len(suffix)) == ("vit-b/16", "pets", 8)
    assert all(len(value) <= 1_000_000 for _, value in sent("t.chunks"))


def test_publishing_again_sends_the_same_chunks(producer):
    theta, labels = data(40, dtype=np.float16)
    producer.publish("m", "d", theta, labels, run="r", shard=1, shards=2, rows_per_chunk=16)
    first = [value for _, value in sent("t.chunks")]
    producer.publish("m", "d", theta, labels, run="r", shard=1, shards=2, rows_per_chunk=16)
    assert [value for _, value in sent("t.chunks")] == first * 2


@pytest.mark.parametrize("bad,message", [
    (lambda t, y: (t, np.where(np.arange(len(y)) == 17, 9, y)), "labels: row 17: label 9 is outside [0, 3)"),
    (lambda t, y: (np.where(np.arange(len(y))[:, None] == 30, np.nan, t), y), "predictions: row 30: column 0 is nan"),
])
def test_bad_input_publishes_nothing(producer, bad, message):
    theta, labels = bad(*data(40))
    with pytest.raises(InvalidInput) as caught:
        producer.publish("m", "d", theta, labels, target_classes=3, rows_per_chunk=4)
    assert str(caught.value).startswith(message)
    assert client().records == []


@pytest.mark.parametrize("arguments,message", [
    (dict(shards=2), "run: required with shards = 2"),
    (dict(shard=2, shards=2, run="r"), "shard 2 of 2"),
    (dict(model=""), "model: must be a string of 1 to 256 bytes"),
    (dict(dataset="d" * 257), "dataset: must be"),
    (dict(run=""), "run: must be"),
    (dict(rows_per_chunk=0), "at least 1"),
    (dict(target_classes=0), "target_classes: must be at least 1"),
])
def test_refused_arguments(producer, arguments, message):
    theta, labels = data(4)
    arguments = dict(dict(model="m", dataset="d", predictions=theta, labels=labels), **arguments)
    with pytest.raises(InvalidInput, match=message):
        producer.publish(**arguments)
    assert client().records == []


def test_empty_shards(producer):
    with pytest.raises(InvalidInput, match="no rows"):
        producer.publish("m", "d", np.zeros((0, 4), np.float32), np.zeros(0, int))
    summary = producer.publish("m", "d", np.zeros((0, 4), np.float32), np.zeros(0, int), run="r", shard=1, shards=2)
    assert sent("t.chunks") == [] and summary.chunks == 0
    manifest = wire.decode_manifest(sent("t.runs")[0][1])
    assert (manifest.chunks, manifest.total_chunks, manifest.source_classes, manifest.target_classes) == ((), 0, 4, 1)


def test_manifest_in_parts(monkeypatch):
    FakeClient.instances.clear()
    monkeypatch.setattr(leepstream.producer, "Producer", FakeClient)
    small = LeepProducer("b", max_message_bytes=4096 + 100)  # 4 manifest entries a part
    theta, labels = data(50, z=1, y=1, dtype=np.float64)
    theta[:] = 1.0
    summary = small.publish("m", "d", theta, labels, run="r")
    assert summary.rows_per_chunk == 100 // 12 == 8 and summary.chunks == 7 and summary.manifest_parts == 2
    parts = [wire.decode_manifest(value) for _, value in sent("leep.runs")]
    assert [(p.part_index, p.part_count, p.total_chunks, len(p.chunks)) for p in parts] == [(0, 2, 7, 4), (1, 2, 7, 3)]


def test_delivery_failure_publishes_no_manifest(producer):
    client().fail_when = lambda topic, value: topic == "t.chunks" and wire.decode_chunk(value).first_row == 10
    theta, labels = data(30)
    with pytest.raises(DeliveryError, match="rows 10..<20: Broker: Message size too large"):
        producer.publish("m", "d", theta, labels, run="r", rows_per_chunk=10)
    assert sent("t.runs") == []


def test_full_queue_is_retried(producer):
    client().queue_full_once = True
    theta, labels = data(10)
    assert producer.publish("m", "d", theta, labels, rows_per_chunk=3).chunks == 4


def test_stream_cuts_the_same_chunks_as_publish(producer):
    theta, labels = data(1000, z=7, y=4, dtype=np.float64, seed=3)
    producer.publish("m", "d", theta, labels, run="r", shard=0, shards=2, rows_per_chunk=64, eep_accuracy=True,
                     target_classes=4)
    whole = list(client().records)
    client().records.clear()
    with producer.run("m", "d", run="r", shard=0, shards=2, target_classes=4, rows_per_chunk=64,
                      eep_accuracy=True) as stream:
        start = 0
        for size in [1, 63, 64, 200, 0, 5, 300, 17, 350]:
            stream.add(theta[start:start + size], labels[start:start + size])
            start += size
    assert start == 1000
    streamed = client().records
    assert [value for _, _, value in streamed[:-1]] == [value for _, _, value in whole[:-1]]
    assert wire.decode_manifest(streamed[-1][2]).chunks == stream.summary.locations
    assert stream.summary.rows == 1000 and stream.summary.chunks == 16 and stream.summary.eep_accuracy


def test_stream_sends_whole_chunks_as_soon_as_they_are_complete(producer):
    theta, labels = data(100)
    with producer.run("m", "d", target_classes=3, rows_per_chunk=30) as stream:
        stream.add(theta[:20], labels[:20])
        assert sent("t.chunks") == []
        stream.add(theta[20:75], labels[20:75])
        assert [wire.decode_chunk(v).first_row for _, v in sent("t.chunks")] == [0, 30]
        stream.add(theta[75:], labels[75:])
        assert len(sent("t.chunks")) == 3 and sent("t.runs") == []
    assert [wire.decode_chunk(v).row_count for _, v in sent("t.chunks")] == [30, 30, 30, 10]
    assert len(sent("t.runs")) == 1 and stream.summary is not None and stream.close() is stream.summary


def test_stream_refuses_a_bad_batch_before_sending_it(producer):
    theta, labels = data(100)
    stream = producer.run("m", "d", target_classes=3, rows_per_chunk=10)
    stream.add(theta[:25], labels[:25])
    assert len(sent("t.chunks")) == 2
    bad = theta[25:60].copy()
    bad[12] *= 2
    with pytest.raises(InvalidInput) as caught:
        stream.add(bad, labels[25:60])
    assert str(caught.value).startswith("batch 1 predictions: row 37 (row 12 of the batch): the row sums to 2")
    assert len(sent("t.chunks")) == 2  # the buffered rows 20..<25 were not sent with it either
    with pytest.raises(InvalidInput, match=r"batch 2 labels: row 25 \(row 0 of the batch\): label 5"):
        stream.add(theta[25:30], np.full(5, 5))
    with pytest.raises(InvalidInput, match="batch 3 predictions: has 4 columns; the run has 5"):
        stream.add(theta[25:30, :4], labels[25:30])
    stream.add(theta[25:], labels[25:])  # the stream goes on after a refused batch
    assert stream.close().rows == 100


def test_stream_casts_later_batches_to_the_first_dtype(producer):
    theta, labels = data(10, dtype=np.float32)
    with producer.run("m", "d", target_classes=3, rows_per_chunk=4) as stream:
        stream.add(theta[:5], labels[:5])
        stream.add(theta[5:].astype(np.float64), labels[5:].tolist())
    chunks = [wire.decode_chunk(v) for _, v in sent("t.chunks")]
    assert {c.probabilities.dtype for c in chunks} == {np.dtype("<f4")}
    np.testing.assert_array_equal(np.concatenate([c.probabilities for c in chunks]), theta)


def test_stream_aborted_by_an_exception_publishes_no_manifest(producer):
    theta, labels = data(10)
    with pytest.raises(KeyError):
        with producer.run("m", "d", target_classes=3, rows_per_chunk=4) as stream:
            stream.add(theta, labels)
            raise KeyError("inference crashed")
    assert len(sent("t.chunks")) == 2 and sent("t.runs") == []
    with pytest.raises(RuntimeError, match="aborted"):
        stream.add(theta, labels)


def test_stream_without_rows(producer):
    with pytest.raises(InvalidInput, match="no rows were added"):
        with producer.run("m", "d", target_classes=3):
            pass
    with pytest.raises(InvalidInput, match="source_classes"):
        producer.run("m", "d", run="r", shard=1, shards=3, target_classes=3).close()
    summary = producer.run("m", "d", run="r", shard=1, shards=3, target_classes=3, source_classes=6).close()
    assert summary.chunks == 0 and wire.decode_manifest(sent("t.runs")[0][1]).source_classes == 6


def test_stream_whose_chunk_is_not_delivered_publishes_no_manifest(producer):
    client().fail_when = lambda topic, value: topic == "t.chunks"
    theta, labels = data(10)
    stream = producer.run("m", "d", target_classes=3, rows_per_chunk=100)
    stream.add(theta, labels)
    with pytest.raises(DeliveryError, match=r"rows 0..<10"):
        stream.close()
    assert sent("t.runs") == []
    with pytest.raises(RuntimeError, match="failed"):
        stream.close()


# -- features ----------------------------------------------------------------------------------


def features(rows: int, d: int = 6, dtype=np.float32, seed: int = 1):
    return np.random.default_rng(seed).normal(0, 5, size=(rows, d)).astype(dtype)


def test_publish_with_features(producer):
    theta, labels = data(23)
    phi = features(23, dtype=np.float16)
    summary = producer.publish("m", "d", theta, labels, run="r", rows_per_chunk=5, features=phi)
    values = [value for _, value in sent("t.chunks")]
    assert {value[4] for value in values} == {2}  # version 2: with features
    chunks = [wire.decode_chunk(value) for value in values]
    assert [(c.first_row, c.row_count, c.feature_width) for c in chunks] == [(0, 5, 6), (5, 5, 6), (10, 5, 6),
                                                                          (15, 5, 6), (20, 3, 6)]
    assert {c.features.dtype for c in chunks} == {np.dtype("<f2")}
    np.testing.assert_array_equal(np.concatenate([c.features for c in chunks]), phi)
    np.testing.assert_array_equal(np.concatenate([c.probabilities for c in chunks]), theta)
    [(key, value)] = sent("t.runs")
    assert value[4] == 2 and wire.decode_manifest(value).feature_width == 6
    assert summary.feature_width == 6 and summary.chunks == 5


def test_publish_without_features_is_version_1(producer):
    theta, labels = data(10)
    summary = producer.publish("m", "d", theta, labels, run="r", rows_per_chunk=4)
    assert {value[4] for _, value in sent("t.chunks")} == {1} and sent("t.runs")[0][1][4] == 1
    assert summary.feature_width == 0 and wire.decode_manifest(sent("t.runs")[0][1]).feature_width == 0


def test_features_size_the_chunks(producer):
    theta, labels = data(100, z=1000, y=10)
    summary = producer.publish("m", "d", theta, labels, features=features(100, d=4096))
    # ⌊(1,000,000 − 4,096) ÷ (1000·4 + 4096·4 + 4)⌋
    assert summary.rows_per_chunk == 48 and summary.chunks == 3
    assert all(len(value) <= 1_000_000 for _, value in sent("t.chunks"))


@pytest.mark.parametrize("bad,message", [
    (lambda phi: np.where((np.arange(40) == 17)[:, None] & (np.arange(6) == 3), np.nan, phi),
     "features: row 17: column 3 is NaN; features must be finite"),
    (lambda phi: np.where((np.arange(40) == 39)[:, None], -np.inf, phi), "features: row 39: column 0 is -inf"),
    (lambda phi: phi[:39], "features: has 39 rows but predictions has 40"),
    (lambda phi: phi.astype(np.int64), "features: has dtype int64; expected float16, float32 or float64 features"),
    (lambda phi: phi[:, 0], "features: must be 2-D"),
    (lambda phi: np.zeros((40, 8193), np.float32), "features: feature_width = 8193 is outside [1, 8192]"),
])
def test_bad_features_publish_nothing(producer, bad, message):
    theta, labels = data(40)
    with pytest.raises(InvalidInput) as caught:
        producer.publish("m", "d", theta, labels, target_classes=3, rows_per_chunk=4, features=bad(features(40)))
    assert str(caught.value).startswith(message)
    assert client().records == []


def test_stream_with_features_cuts_the_same_chunks_as_publish(producer):
    theta, labels = data(1000, z=7, y=4, dtype=np.float64, seed=3)
    phi = features(1000, d=9, dtype=np.float32)
    producer.publish("m", "d", theta, labels, run="r", shard=1, shards=2, rows_per_chunk=64, target_classes=4,
                     features=phi)
    whole = list(client().records)
    client().records.clear()
    with producer.run("m", "d", run="r", shard=1, shards=2, target_classes=4, rows_per_chunk=64) as stream:
        start = 0
        for size in [1, 63, 64, 200, 0, 5, 300, 17, 350]:
            stream.add(theta[start:start + size], labels[start:start + size], features=phi[start:start + size])
            start += size
    streamed = client().records
    assert [value for _, _, value in streamed[:-1]] == [value for _, _, value in whole[:-1]]
    manifest = wire.decode_manifest(streamed[-1][2])
    assert manifest.feature_width == 9 and manifest.chunks == stream.summary.locations
    assert stream.summary.feature_width == 9 and stream.summary.chunks == 16


def test_stream_features_are_all_or_nothing(producer):
    theta, labels = data(40)
    phi = features(40)
    stream = producer.run("m", "d", target_classes=3, rows_per_chunk=10)
    stream.add(theta[:5], labels[:5], features=phi[:5])
    with pytest.raises(InvalidInput) as caught:
        stream.add(theta[5:10], labels[5:10])
    assert str(caught.value) == ("batch 1 features: missing, but the run carries 6 features a row (set by batch 0): "
                                 "every batch of it must carry them")
    with pytest.raises(InvalidInput) as caught:
        stream.add(theta[5:10], labels[5:10], features=features(5, d=4))
    assert str(caught.value) == ("batch 2 features: has 4 features a row (rows 5..<10 of the shard); the run has 6, "
                                 "set by batch 0")
    bad = phi[5:10].copy()
    bad[3, 2] = np.nan
    with pytest.raises(InvalidInput, match=r"batch 3 features: row 8 \(row 3 of the batch\): column 2 is NaN"):
        stream.add(theta[5:10], labels[5:10], features=bad)
    with pytest.raises(InvalidInput, match="batch 4 features: has 4 rows but batch 4 predictions has 5"):
        stream.add(theta[5:10], labels[5:10], features=phi[5:9])
    assert sent("t.chunks") == []  # nothing of the refused batches was sent
    stream.add(theta[5:], labels[5:], features=phi[5:].astype(np.float64))  # cast to the first batch's float32
    summary = stream.close()
    chunks = [wire.decode_chunk(v) for _, v in sent("t.chunks")]
    assert summary.rows == 40 and {c.features.dtype for c in chunks} == {np.dtype("<f4")}
    np.testing.assert_array_equal(np.concatenate([c.features for c in chunks]), phi)
    assert wire.decode_manifest(sent("t.runs")[0][1]).feature_width == 6


def test_stream_without_features_refuses_them_later(producer):
    theta, labels = data(10)
    stream = producer.run("m", "d", target_classes=3)
    # A refused first batch decides nothing.
    with pytest.raises(InvalidInput, match="batch 0 labels"):
        stream.add(theta[:2], np.full(2, 7), features=features(2))
    stream.add(theta[:5], labels[:5])
    with pytest.raises(InvalidInput) as caught:
        stream.add(theta[5:], labels[5:], features=features(5))
    assert str(caught.value) == ("batch 2 features: given, but batch 1 carried none: a run carries features in every "
                                 "batch or in none")
    stream.add(theta[5:], labels[5:])
    assert stream.close().feature_width == 0 and sent("t.runs")[0][1][4] == 1


def test_stream_feature_width_given_up_front(producer):
    theta, labels = data(10)
    stream = producer.run("m", "d", target_classes=3, feature_width=6)
    with pytest.raises(InvalidInput, match=r"batch 0 features: missing, but the run carries 6 features a row \(set by "
                                           r"feature_width=\)"):
        stream.add(theta, labels)
    with pytest.raises(InvalidInput, match="has 5 features a row"):
        stream.add(theta, labels, features=features(10, d=5))
    stream.add(theta, labels, features=features(10))
    assert stream.close().feature_width == 6
    # An empty shard of a run with features declares them in its (version-2) manifest.
    summary = producer.run("m", "d", run="r", shard=1, shards=2, target_classes=3, source_classes=5,
                           feature_width=768).close()
    manifest = wire.decode_manifest(sent("t.runs")[-1][1])
    assert summary.chunks == 0 and manifest.feature_width == 768 and manifest.chunks == ()
    with pytest.raises(InvalidInput, match=r"feature_width: must be in \[1, 8192\], got 0"):
        producer.run("m", "d", target_classes=3, feature_width=0)


# -- features alone (a model without a classifier head) ----------------------------------------


def test_publish_features_alone(producer):
    _, labels = data(23)
    phi = features(23, dtype=np.float16)
    summary = producer.publish("dinov2", "d", labels=labels, features=phi, run="r", rows_per_chunk=5)
    values = [value for _, value in sent("t.chunks")]
    assert {value[4] for value in values} == {3}  # version 3: features alone
    chunks = [wire.decode_chunk(value) for value in values]
    assert [(c.first_row, c.row_count, c.source_classes, c.feature_width) for c in chunks] == [
        (0, 5, 0, 6), (5, 5, 0, 6), (10, 5, 0, 6), (15, 5, 0, 6), (20, 3, 0, 6)]
    assert all(c.probabilities is None for c in chunks)
    np.testing.assert_array_equal(np.concatenate([c.features for c in chunks]), phi)
    np.testing.assert_array_equal(np.concatenate([c.labels for c in chunks]), labels)
    [(key, value)] = sent("t.runs")
    manifest = wire.decode_manifest(value)
    assert key == b"r" and value[4] == 2 and (manifest.source_classes, manifest.feature_width) == (0, 6)
    assert manifest.chunks == summary.locations and manifest.shard_rows == 23 and not manifest.eep_accuracy
    assert (summary.source_classes, summary.feature_width, summary.chunks) == (0, 6, 5)


def test_features_alone_size_the_chunks(producer):
    _, labels = data(700, y=10)
    summary = producer.publish("clip", "d", labels=labels, features=features(700, d=768))
    # ⌊(1,000,000 − 4,096) ÷ (768·4 + 4)⌋: no θ in the row.
    assert summary.rows_per_chunk == 995_904 // 3076 == 323 and summary.chunks == 3
    assert all(len(value) <= 1_000_000 for _, value in sent("t.chunks"))


@pytest.mark.parametrize("arguments,message", [
    (dict(labels=None), "labels: missing: one target label per row is required"),
    (dict(features=None), "predictions: missing, and so are the features: give predictions, features or both"),
    (dict(eep_accuracy=True), "eep_accuracy: needs predictions"),
    (dict(labels=np.where(np.arange(40) == 17, 9, data(40)[1]), target_classes=3),
     "labels: row 17: label 9 is outside [0, 3)"),
    (dict(features=np.where((np.arange(40) == 3)[:, None] & (np.arange(6) == 2), np.nan, features(40))),
     "features: row 3: column 2 is NaN; features must be finite"),
    (dict(features=features(39)), "features: has 39 rows but labels has 40"),
    (dict(features=features(40).astype(np.int32)), "features: has dtype int32"),
    (dict(labels=np.zeros(0, int), features=features(0)), "features: has no rows; a run needs at least one"),
])
def test_features_alone_refused_before_anything_is_sent(producer, arguments, message):
    arguments = dict(dict(model="m", dataset="d", labels=data(40)[1], features=features(40)), **arguments)
    with pytest.raises(InvalidInput) as caught:
        producer.publish(**arguments)
    assert str(caught.value).startswith(message)
    assert client().records == []


def test_stream_of_features_alone_cuts_the_same_chunks_as_publish(producer):
    _, labels = data(1000, y=4, seed=3)
    phi = features(1000, d=9, dtype=np.float32)
    producer.publish("m", "d", labels=labels, features=phi, run="r", shard=1, shards=2, rows_per_chunk=64,
                     target_classes=4)
    whole = list(client().records)
    client().records.clear()
    with producer.run("m", "d", run="r", shard=1, shards=2, target_classes=4, rows_per_chunk=64) as stream:
        start = 0
        for size in [1, 63, 64, 200, 0, 5, 300, 17, 350]:
            stream.add(labels=labels[start:start + size], features=phi[start:start + size].astype(np.float64)
                       if size == 5 else phi[start:start + size])  # a later float64 batch is cast to float32
            start += size
    streamed = client().records
    assert [value for _, _, value in streamed[:-1]] == [value for _, _, value in whole[:-1]]
    manifest = wire.decode_manifest(streamed[-1][2])
    assert (manifest.source_classes, manifest.feature_width) == (0, 9) and manifest.chunks == stream.summary.locations
    assert stream.summary.source_classes == 0 and stream.summary.chunks == 16 and stream.summary.rows == 1000


def test_stream_probabilities_are_all_or_nothing(producer):
    theta, labels = data(40)
    phi = features(40)
    alone = producer.run("m", "d", target_classes=3, rows_per_chunk=10)
    alone.add(labels=labels[:5], features=phi[:5])
    with pytest.raises(InvalidInput) as caught:
        alone.add(theta[5:10], labels[5:10], features=phi[5:10])
    assert str(caught.value) == ("batch 1 predictions: given, but the run carries none (set by batch 0): a run "
                                 "carries probabilities in every batch or in none")
    with pytest.raises(InvalidInput, match=r"batch 2 labels: row 5 \(row 0 of the batch\): label 3 is outside \[0, 3\)"):
        alone.add(labels=np.full(5, 3), features=phi[5:10])
    with pytest.raises(InvalidInput, match="batch 3 features: has 4 rows but batch 3 labels has 5"):
        alone.add(labels=labels[5:10], features=phi[5:9])
    with pytest.raises(InvalidInput, match="batch 4 features: missing, but the run carries 6 features a row"):
        alone.add(labels=labels[5:10])
    with pytest.raises(InvalidInput, match="batch 5 labels: missing: every batch carries one target label per row"):
        alone.add(features=phi[5:10])
    assert sent("t.chunks") == []
    alone.add(labels=labels[5:], features=phi[5:])
    assert alone.close().rows == 40 and {value[4] for _, value in sent("t.chunks")} == {3}

    with_theta = producer.run("m", "d", target_classes=3, rows_per_chunk=10)
    with_theta.add(theta[:5], labels[:5], features=phi[:5])
    with pytest.raises(InvalidInput) as caught:
        with_theta.add(labels=labels[5:10], features=phi[5:10])
    assert str(caught.value) == ("batch 1 predictions: missing, but the run carries 5 source classes a row (set by "
                                 "batch 0): every batch of it must carry them")
    with pytest.raises(InvalidInput, match="batch 0 predictions: missing, and so are the features"):
        producer.run("m", "d", target_classes=3).add(labels=labels)


def test_stream_of_features_alone_declared_up_front(producer):
    _, labels = data(10)
    stream = producer.run("m", "d", target_classes=3, source_classes=0)
    with pytest.raises(InvalidInput, match=r"batch 0 predictions: given, but the run carries none \(set by "
                                           r"source_classes=\)"):
        stream.add(data(10)[0], labels, features=features(10))
    stream.add(labels=labels, features=features(10))
    assert stream.close().source_classes == 0
    # An empty shard of a run of features alone declares Z = 0 and its D in a version-2 manifest.
    summary = producer.run("m", "d", run="r", shard=1, shards=2, target_classes=3, source_classes=0,
                           feature_width=768).close()
    manifest = wire.decode_manifest(sent("t.runs")[-1][1])
    assert summary.chunks == 0 and (manifest.source_classes, manifest.feature_width, manifest.chunks) == (0, 768, ())
    with pytest.raises(InvalidInput, match="feature_width: unknown: no batch was added"):
        producer.run("m", "d", run="r", shard=1, shards=2, target_classes=3, source_classes=0).close()
    with pytest.raises(InvalidInput, match="eep_accuracy: needs predictions"):
        producer.run("m", "d", target_classes=3, source_classes=0, eep_accuracy=True)
    with pytest.raises(InvalidInput, match="source_classes: must be at least 0"):
        producer.run("m", "d", target_classes=3, source_classes=-1)
