"""Publishing raw records and reading topics from Python, for tests that inject what a real
producer would not (malformed frames, bad rows) and inspect the dead-letter topic.

Frames are encoded by the independent encoder of the golden fixtures
(Tests/WireFormatTests/Fixtures/make_fixtures.py), never by the Swift code under test."""

from __future__ import annotations

import pathlib
import sys
import time

import numpy as np
from confluent_kafka import Consumer, Producer, TopicPartition

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "WireFormatTests" / "Fixtures"))
import make_fixtures as frames  # noqa: E402

FLOAT32 = 2


class RawProducer:
    """A confluent-kafka producer that waits for each batch and returns the locations."""

    def __init__(self, bootstrap: str):
        # The Java-compatible partitioner, as leepstream's own producers use (docs/wire-format.md).
        self.producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random",
                                  "message.max.bytes": 2_000_000})

    def send(self, topic: str, values: list[bytes], key: str | None = None) -> list[tuple[int, int]]:
        locations: list[tuple[int, int] | None] = [None] * len(values)

        def delivered(index):
            def callback(error, message):
                assert error is None, error
                locations[index] = (message.partition(), message.offset())
            return callback

        for index, value in enumerate(values):
            self.producer.produce(topic, value=value, key=key, on_delivery=delivered(index))
        self.producer.flush(30)
        assert all(location is not None for location in locations)
        return locations  # type: ignore[return-value]


def random_rows(seed: int, rows: int, source_classes: int, target_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Random float32 softmax rows and labels, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(rows, source_classes))
    theta = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return theta.astype(np.float32), rng.integers(0, target_classes, size=rows)


def chunk_frames(run: str, model: str, dataset: str, theta: np.ndarray, labels: np.ndarray,
                 rows_per_chunk: int, target_classes: int) -> list[tuple[int, int, bytes]]:
    """(first_row, row_count, frame) for each chunk of a one-shard run, θ as float32."""
    chunks = []
    for first in range(0, len(labels), rows_per_chunk):
        rows = theta[first:first + rows_per_chunk]
        frame = frames.chunk_frame(run, model, dataset, 0, 1, first, theta.shape[1], target_classes,
                                   FLOAT32, [int(y) for y in labels[first:first + rows_per_chunk]],
                                   rows.astype(np.float32).tolist())
        chunks.append((first, len(rows), frame))
    return chunks


def publish_run(producer: RawProducer, prefix: str, run: str, model: str, dataset: str,
                chunks: list[tuple[int, int, bytes]], source_classes: int, target_classes: int,
                rows: int) -> None:
    """Publishes chunk frames (possibly broken) and a manifest listing where they landed."""
    locations = producer.send(prefix + "chunks", [frame for _, _, frame in chunks])
    listed = [(first, count, partition, offset)
              for (first, count, _), (partition, offset) in zip(chunks, locations)]
    manifest = frames.manifest_frame(run, model, dataset, 0, 1, source_classes, target_classes, rows,
                                     len(listed), 0, 1, listed)
    producer.send(prefix + "runs", [manifest], key=run)


def read_topic(bootstrap: str, topic: str, idle: float = 3.0) -> list[tuple[bytes, dict[str, bytes]]]:
    """Every record of `topic` from its beginning, until none arrives for `idle` seconds."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "leepstream-test-reader",
                         "enable.auto.commit": False})
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = metadata.topics[topic].partitions
    consumer.assign([TopicPartition(topic, partition, 0) for partition in partitions])
    records = []
    last = time.monotonic()
    while time.monotonic() - last < idle:
        message = consumer.poll(0.2)
        if message is None or message.error():
            continue
        last = time.monotonic()
        records.append((message.value(), dict(message.headers() or [])))
    consumer.close()
    return records
