"""Publishing runs to leepstream over Kafka with confluent-kafka: chunks to `<prefix>chunks` with
no key, then, once every chunk is delivered, the shard's manifest to `<prefix>runs` keyed by
the run id (docs/wire-format.md, "Publishing a run from another language"). A run may carry the
source model's penultimate-layer features beside the probabilities (chunk and manifest frames
of version 2), for the aggregator's LogME and H-score, or features alone, for a model without a
classifier head (chunk frames of version 3, a version-2 manifest with `source_classes` 0).

Behaves like `leep produce`: input is validated with the same rules before anything of it is
sent; chunks are cut at fixed row boundaries from row 0 of the shard, so publishing a shard
again yields the same chunk ids and is counted once; the manifest lists every chunk with the
partition and offset of its delivery report.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, Mapping

import numpy as np
from confluent_kafka import Producer

from . import wire
from .validation import (DEFAULT_SUM_TOLERANCE, InvalidInput, as_labels, as_probabilities, validate,
                         validate_features, validate_labels)

#: Partitioners that hash a key as the Java client and the Swift processes do.
_JAVA_COMPATIBLE = ("murmur2_random", "murmur2")
_MAX_NAME_BYTES = 256


class DeliveryError(RuntimeError):
    """A record was not delivered (the broker refused it, or the wait timed out). Nothing after
    it was published; publishing the shard again with the same chunking is safe."""


@dataclass(frozen=True)
class RunSummary:
    """What a shard's publication did."""

    run: str
    model: str
    dataset: str
    shard: int
    shards: int
    #: Rows published (this shard's).
    rows: int
    #: Chunk frames published, and their bytes.
    chunks: int
    chunk_bytes: int
    #: Z, the probabilities a row; 0 for features alone.
    source_classes: int
    target_classes: int
    eep_accuracy: bool
    rows_per_chunk: int
    #: Manifest parts published and the partition of `<prefix>runs` they landed in.
    manifest_parts: int
    manifest_partition: int
    #: Every chunk of the shard and where it landed, by first row.
    locations: tuple[wire.ChunkLocation, ...]
    #: D, the features a row the chunks carry; 0 without features.
    feature_width: int = 0


def default_run_id(model: str, dataset: str) -> str:
    """`model@dataset@xxxxxxxx`, the form `leep produce` picks when no run id is given."""
    return f"{model}@{dataset}@{uuid.uuid4().hex[:8]}"


class LeepProducer:
    """A confluent-kafka producer that publishes runs for leepstream to score.

    `config` holds any further librdkafka properties (security, ...). The defaults are those of
    the Swift producers: `partitioner=murmur2_random` (required: a run's manifest must land in
    the partition the Swift workers put its partials in), `enable.idempotence=true`,
    `linger.ms=5`. `max_message_bytes` is the broker's message limit, which sizes chunks and
    manifest parts; `sum_tolerance` the largest accepted |row sum − 1|."""

    def __init__(
        self,
        brokers: str,
        topic_prefix: str = "leep.",
        config: Mapping[str, Any] | None = None,
        *,
        max_message_bytes: int = wire.DEFAULT_MAX_MESSAGE_BYTES,
        sum_tolerance: float = DEFAULT_SUM_TOLERANCE,
        delivery_timeout: float = 120.0,
    ):
        settings: dict[str, Any] = {
            "bootstrap.servers": brokers,
            "partitioner": "murmur2_random",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.max.bytes": max(max_message_bytes, 1_000_000) + 100_000,
        }
        settings.update(config or {})
        if settings["partitioner"] not in _JAVA_COMPATIBLE:
            raise ValueError(f"partitioner={settings['partitioner']!r} would put a run's manifest in another partition "
                             f"than its partials; leepstream needs murmur2_random (the Java client's)")
        self.topic_prefix = topic_prefix
        self.chunks_topic = f"{topic_prefix}chunks"
        self.runs_topic = f"{topic_prefix}runs"
        self.max_message_bytes = max_message_bytes
        self.sum_tolerance = sum_tolerance
        self.delivery_timeout = delivery_timeout
        self.brokers = brokers
        #: The client settings given (security and the like), for the subscriber of `verdict()`.
        self.client_config = dict(config or {})
        self._subscriber = None
        self._client = Producer(settings)

    # -- whole arrays ---------------------------------------------------------------------------

    def publish(
        self,
        model: str,
        dataset: str,
        predictions: Any = None,
        labels: Any = None,
        run: str | None = None,
        shard: int = 0,
        shards: int = 1,
        eep_accuracy: bool = False,
        rows_per_chunk: int | None = None,
        target_classes: int | None = None,
        features: Any = None,
    ) -> RunSummary:
        """Publishes one shard of a run: the `labels` (n integers) with `predictions` (n×Z
        softmax outputs, float16/32/64, anything with `__array__`), `features` (n×D, the source
        model's penultimate-layer features of the same rows, float16/32/64, kept in their dtype,
        every value finite) or both. A model without a classifier head gives features alone:
        `publish(model, dataset, labels=labels, features=features)`. Validates every row first
        and publishes nothing if one is bad (`InvalidInput`); returns once every chunk and the
        manifest are delivered.

        `run` is shared by the shards of a run (required when `shards` > 1; default: a new id);
        `target_classes` is Y (default: the largest label + 1); `rows_per_chunk` caps the
        chunk size and must be the same whenever the shard is published again (as must the
        features' width and dtype, which size the chunks too). Every shard of a run sends the
        same kinds of input: probabilities in all or none, features in all or none, with the
        same D. `eep_accuracy` needs predictions."""
        run = _check_identity(model, dataset, run, shard, shards)
        if labels is None:
            raise InvalidInput("labels", "missing: one target label per row is required")
        if predictions is None and features is None:
            raise InvalidInput("predictions", "missing, and so are the features: give predictions, features or both")
        if predictions is None:
            if eep_accuracy:
                raise InvalidInput("eep_accuracy", "needs predictions: EEP accuracy comes from the softmax outputs")
            theta = None
            y = validate_labels(labels, target_classes=target_classes)
            phi = validate_features(features, y.shape[0], rows_name="labels")
        else:
            theta, y = validate(predictions, labels, target_classes=target_classes, sum_tolerance=self.sum_tolerance)
            phi = None if features is None else validate_features(features, theta.shape[0])
        rows = y.shape[0]
        if rows == 0 and shards == 1:
            raise InvalidInput("predictions" if theta is not None else "features", "has no rows; a run needs at least one")
        if target_classes is None:
            target_classes = int(y.max()) + 1 if y.size else 1
        sender = _ShardSender(self, run, model, dataset, shard, shards, 0 if theta is None else theta.shape[1],
                              target_classes, None if theta is None else theta.dtype, eep_accuracy, rows_per_chunk,
                              feature_width=0 if phi is None else phi.shape[1],
                              feature_dtype=None if phi is None else phi.dtype)
        step = sender.rows_per_chunk
        for first in range(0, rows, step):
            sender.send(first, None if theta is None else theta[first:first + step], y[first:first + step],
                        None if phi is None else phi[first:first + step])
        return sender.finish()

    # -- streaming ------------------------------------------------------------------------------

    def run(
        self,
        model: str,
        dataset: str,
        *,
        target_classes: int,
        source_classes: int | None = None,
        run: str | None = None,
        shard: int = 0,
        shards: int = 1,
        eep_accuracy: bool = False,
        rows_per_chunk: int | None = None,
        dtype: Any = None,
        feature_width: int | None = None,
    ) -> ShardStream:
        """A shard published as batches arrive, for inference loops:

            with producer.run(model="vit-b/16", dataset="pets", target_classes=37) as stream:
                for images, labels in loader:
                    logits, features = model(images)
                    stream.add(softmax(logits), labels, features=features)   # or without features
            print(stream.summary)

            with producer.run(model="dinov2", dataset="pets", target_classes=37) as stream:
                for images, labels in loader:
                    stream.add(labels=labels, features=encoder(images))      # no classifier head

        `target_classes` (Y) is required, since every chunk carries it before the later labels
        are seen. `source_classes` (Z) and `dtype` default to the first batch's; later batches
        of another float dtype are cast to it. Probabilities and features are each all or
        nothing, and a batch carries at least one of them: the first batch decides (or
        `source_classes` when given: 0 for features alone; `feature_width`, D, when given: then
        every batch must carry D features a row), and every later batch must carry the same
        kinds, features of the same width; features are cast to the first batch's float dtype
        like the probabilities. Give `source_classes` (and, for features, `feature_width`) to
        publish an empty shard. Chunks are cut at fixed row boundaries whatever the batch
        sizes; the manifest is published when the `with` block ends without an exception (or
        on `close()`). If it ends with one, no manifest is published and the run does not
        complete: publish the shard again, with the same run id, to complete it."""
        run = _check_identity(model, dataset, run, shard, shards)
        if target_classes < 1:
            raise InvalidInput("target_classes", f"must be at least 1, got {target_classes}")
        if source_classes is not None and source_classes < 0:
            raise InvalidInput("source_classes", f"must be at least 0 (0: features alone), got {source_classes}")
        if source_classes == 0 and eep_accuracy:
            raise InvalidInput("eep_accuracy", "needs predictions: EEP accuracy comes from the softmax outputs")
        if dtype is not None and wire.dtype_code(np.dtype(dtype)) is None:
            raise InvalidInput("dtype", f"{np.dtype(dtype)} is not float16, float32 or float64")
        if feature_width is not None and not 1 <= feature_width <= wire.MAX_FEATURE_WIDTH:
            raise InvalidInput("feature_width", f"must be in [1, {wire.MAX_FEATURE_WIDTH}], got {feature_width}")
        return ShardStream(self, run, model, dataset, shard, shards, target_classes, source_classes,
                           None if dtype is None else np.dtype(dtype), eep_accuracy, rows_per_chunk, feature_width)

    # -- the client -------------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> int:
        """Waits for every record in flight; returns how many are still undelivered."""
        return self._client.flush(self.delivery_timeout if timeout is None else timeout)

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> LeepProducer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _produce(self, topic: str, value: bytes, key: bytes | None, on_delivery: Callable[..., None]) -> None:
        while True:
            try:
                self._client.produce(topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                self._client.poll(0.1)
        self._client.poll(0)

    def _wait(self, what: str) -> None:
        undelivered = self._client.flush(self.delivery_timeout)
        if undelivered:
            raise DeliveryError(f"{what}: {undelivered} records still undelivered after {self.delivery_timeout} s")

    def _poll(self) -> None:
        self._client.poll(0)


class ShardStream:
    """One shard published batch by batch (`LeepProducer.run`)."""

    def __init__(self, producer: LeepProducer, run: str, model: str, dataset: str, shard: int, shards: int,
                 target_classes: int, source_classes: int | None, dtype: np.dtype | None, eep_accuracy: bool,
                 rows_per_chunk: int | None, feature_width: int | None = None):
        self._producer = producer
        self.run_id = run
        self.model = model
        self.dataset = dataset
        self.shard = shard
        self.shards = shards
        self.target_classes = target_classes
        self._source_classes = source_classes
        self._dtype = dtype
        self._eep_accuracy = eep_accuracy
        self._requested_rows = rows_per_chunk
        self._sender: _ShardSender | None = None
        self._buffer_probabilities: np.ndarray | None = None
        self._buffer_labels: np.ndarray | None = None
        self._buffer_features: np.ndarray | None = None
        # Whether the run carries probabilities and features (None: no batch has decided yet),
        # the features' width and dtype, and what decided each (for messages).
        self._with_probabilities: bool | None = None if source_classes is None else source_classes > 0
        self._probabilities_decided_by = "source_classes=" if source_classes is not None else ""
        self._with_features: bool | None = None if feature_width is None else True
        self._feature_width = feature_width
        self._feature_dtype: np.dtype | None = None
        self._features_decided_by = "feature_width=" if feature_width is not None else ""
        self._pending = 0
        self._batches = 0
        self.rows = 0
        self.summary: RunSummary | None = None
        self._state = "open"

    def add(self, probabilities: Any = None, labels: Any = None, features: Any = None) -> None:
        """Adds a batch: `labels` (b integers < Y) with `probabilities` (b×Z softmax outputs),
        `features` (b×D, finite, the same D in every batch) or both, as the run carries them
        (`add(labels=…, features=…)` for a model without a classifier head). The batch is
        validated whole before any of it is sent (`InvalidInput` names the batch, the shard row
        and the batch row); full chunks are sent, the remainder is buffered."""
        if self._state != "open":
            raise RuntimeError(f"the stream of run {self.run_id} is {self._state}")
        batch = self._batches
        names = (f"batch {batch} predictions", f"batch {batch} labels")
        self._batches += 1  # every call counts, refused or not, so the name matches the caller's loop
        if labels is None:
            raise InvalidInput(names[1], "missing: every batch carries one target label per row")
        theta, y = self._batch_probabilities(probabilities, labels, names, features is not None)
        phi = self._batch_features(features, batch, y.shape[0], names[0] if theta is not None else names[1])
        if self._with_probabilities is None:  # the first accepted batch decides for the run
            self._with_probabilities = theta is not None
            self._probabilities_decided_by = f"batch {batch}"
        if self._with_features is None:
            self._with_features = phi is not None
            self._features_decided_by = f"batch {batch}"
            if phi is not None:
                self._feature_width = phi.shape[1]
        count = y.shape[0]
        if count == 0:
            return
        sender = self._start(theta, phi)
        step = sender.rows_per_chunk
        assert self._buffer_labels is not None
        # Each buffer the run has, with the batch's rows for it (present: checked above).
        pairs = [(buffer, array) for buffer, array in ((self._buffer_probabilities, theta), (self._buffer_labels, y),
                                                        (self._buffer_features, phi)) if buffer is not None]
        assert all(array is not None for _, array in pairs)

        def part(array: np.ndarray | None, start: int, end: int) -> np.ndarray | None:
            return None if array is None else array[start:end]

        taken = 0
        if self._pending:
            taken = min(step - self._pending, count)
            for buffer, array in pairs:
                buffer[self._pending:self._pending + taken] = array[:taken]
            self._pending += taken
            if self._pending == step:
                sender.send(sender.rows_sent, self._buffer_probabilities, self._buffer_labels, self._buffer_features)
                self._pending = 0
        while count - taken >= step:  # whole chunks straight from the batch
            sender.send(sender.rows_sent, part(theta, taken, taken + step), y[taken:taken + step],
                        part(phi, taken, taken + step))
            taken += step
        if taken < count:
            left = count - taken
            for buffer, array in pairs:
                buffer[:left] = array[taken:]
            self._pending = left
        self.rows += count
        sender.check_deliveries()

    def _batch_probabilities(self, probabilities: Any, labels: Any, names: tuple[str, str],
                             with_features: bool) -> tuple[np.ndarray | None, np.ndarray]:
        """The batch's probabilities (None for features alone), checked against the run's (all
        or nothing, one Z) and cast to its dtype, and its labels as int64, every row checked."""
        if probabilities is None:
            if self._with_probabilities:
                raise InvalidInput(names[0], f"missing, but the run carries {self._source_classes} source classes a row "
                                             f"(set by {self._probabilities_decided_by}): every batch of it must carry "
                                             f"them")
            if not with_features and not self._with_features:  # (a run with features names them missing)
                raise InvalidInput(names[0], "missing, and so are the features: a batch carries probabilities, "
                                             "features or both")
            return None, validate_labels(labels, target_classes=self.target_classes, name=names[1],
                                         first_row=self.rows, in_batch=True)
        if self._with_probabilities is False:
            raise InvalidInput(names[0], f"given, but the run carries none (set by {self._probabilities_decided_by}): "
                                         f"a run carries probabilities in every batch or in none")
        theta = as_probabilities(probabilities, names[0])
        if self._source_classes is not None and theta.shape[1] != self._source_classes:
            raise InvalidInput(names[0], f"has {theta.shape[1]} columns; the run has {self._source_classes} "
                                         f"source classes")
        if self._dtype is not None and theta.dtype != self._dtype:
            theta = theta.astype(self._dtype)
        return validate(theta, as_labels(labels, names[1]), target_classes=self.target_classes,
                        sum_tolerance=self._producer.sum_tolerance, names=names, first_row=self.rows, in_batch=True)

    def _batch_features(self, features: Any, batch: int, rows: int, rows_name: str) -> np.ndarray | None:
        """The batch's features, checked against the run's (all or nothing, one width), cast to
        the run's feature dtype; `rows_name` names the array whose rows they must match."""
        name = f"batch {batch} features"
        if features is None:
            if self._with_features:
                raise InvalidInput(name, f"missing, but the run carries {self._feature_width} features a row (set by "
                                         f"{self._features_decided_by}): every batch of it must carry them")
            return None
        if self._with_features is False:
            raise InvalidInput(name, f"given, but {self._features_decided_by} carried none: a run carries features in "
                                     f"every batch or in none")
        phi = validate_features(features, rows, name=name, rows_name=rows_name, first_row=self.rows, in_batch=True)
        if self._feature_width is not None and phi.shape[1] != self._feature_width:
            raise InvalidInput(name, f"has {phi.shape[1]} features a row (rows {self.rows}..<{self.rows + rows} of the "
                                     f"shard); the run has {self._feature_width}, set by {self._features_decided_by}")
        if self._feature_dtype is not None and phi.dtype != self._feature_dtype:
            phi = phi.astype(self._feature_dtype)
        return phi

    def verdict(self, timeout: float = 30.0):
        """Where this run stands against the other models of its data set now (`Verdict`): its
        latest score record (a `streaming` one carries the estimate of LEEP), the model with the
        highest certified lower bound, whether that model certainly beats this one
        (`dominated_by`), and whether the estimate says it likely does (`likely_loses`). Reads
        the score topic up to its end (`ScoreSubscriber`, with this producer's brokers, prefix
        and client settings), so call it every few batches, not every one."""
        from .scores import ScoreSubscriber, Verdict, _keep_latest

        if self._producer._subscriber is None:
            self._producer._subscriber = ScoreSubscriber(
                self._producer.brokers, topic_prefix=self._producer.topic_prefix, config=self._producer.client_config)
        board: dict = {}
        own = None
        for record in self._producer._subscriber.records(dataset=self.dataset, until_caught_up=True, timeout=timeout):
            if record.run == self.run_id:
                own = record
            elif record.model != self.model:
                _keep_latest(board, record)
        return Verdict.of(self.run_id, self.model, list(board.values()) + ([own] if own else []))

    def close(self) -> RunSummary:
        """Sends the buffered rows as the last chunk, waits for every delivery and publishes
        the manifest. Returns (and keeps in `summary`) what was published."""
        if self._state == "closed":
            assert self.summary is not None
            return self.summary
        if self._state != "open":
            raise RuntimeError(f"the stream of run {self.run_id} is {self._state}")
        if self.rows == 0 and self.shards == 1:
            self._state = "aborted"
            raise InvalidInput("predictions" if self._with_probabilities is not False else "features",
                               "no rows were added; a run needs at least one")
        if self._sender is None and self._source_classes is None:
            self._state = "aborted"
            raise InvalidInput("source_classes", "unknown: no batch was added; give source_classes= (0 for features "
                                                 "alone, with feature_width=) to publish an empty shard")
        if self._sender is None and self._source_classes == 0 and not self._with_features:
            self._state = "aborted"
            raise InvalidInput("feature_width", "unknown: no batch was added; an empty shard of features alone needs "
                                                "feature_width= too")
        sender = self._start(None, None)
        if self._pending:
            assert self._buffer_labels is not None
            pending = self._pending
            sender.send(sender.rows_sent,
                        None if self._buffer_probabilities is None else self._buffer_probabilities[:pending],
                        self._buffer_labels[:pending],
                        None if self._buffer_features is None else self._buffer_features[:pending])
            self._pending = 0
        self._state = "closing"
        try:
            self.summary = sender.finish()
        except BaseException:
            self._state = "failed"
            raise
        self._state = "closed"
        return self.summary

    def abort(self) -> None:
        """Stops without publishing the manifest (chunks already sent stay on the topic; the
        run completes only if the shard is published again with the same run id)."""
        if self._state != "closed":
            self._state = "aborted"
            self._producer._poll()

    def __enter__(self) -> ShardStream:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def _start(self, first: np.ndarray | None, first_features: np.ndarray | None) -> _ShardSender:
        """The sender, created on the first batch with rows (which fixes Z and the dtypes if
        not given: Z is 0 when that batch carries features alone)."""
        if self._sender is None:
            if self._source_classes is None:
                self._source_classes = 0 if first is None else first.shape[1]
            if first is not None and self._dtype is None:
                self._dtype = first.dtype
            if first_features is not None:
                self._feature_dtype = first_features.dtype
            # (np.dtype has a length, so never test one for truth.)
            dtype = None if self._source_classes == 0 else (self._dtype if self._dtype is not None
                                                             else np.dtype(np.float32))
            feature_width = self._feature_width if self._with_features else 0
            assert feature_width is not None
            feature_dtype = self._feature_dtype if self._feature_dtype is not None else np.dtype(np.float32)
            self._sender = _ShardSender(self._producer, self.run_id, self.model, self.dataset, self.shard,
                                        self.shards, self._source_classes, self.target_classes, dtype,
                                        self._eep_accuracy, self._requested_rows, feature_width=feature_width,
                                        feature_dtype=feature_dtype if feature_width else None)
            rows = self._sender.rows_per_chunk
            if dtype is not None:
                self._buffer_probabilities = np.empty((rows, self._source_classes), dtype=dtype)
            self._buffer_labels = np.empty(rows, dtype=np.int64)
            if feature_width:
                self._buffer_features = np.empty((rows, feature_width), dtype=feature_dtype)
        return self._sender


class _ShardSender:
    """Sends one shard's chunks and tracks their delivery reports; then its manifest. Z
    (`source_classes`) is 0 for features alone, and then `dtype` is None."""

    def __init__(self, producer: LeepProducer, run: str, model: str, dataset: str, shard: int, shards: int,
                 source_classes: int, target_classes: int, dtype: np.dtype | None, eep_accuracy: bool,
                 requested_rows: int | None, feature_width: int = 0, feature_dtype: np.dtype | None = None):
        assert source_classes or feature_width, "a run sends probabilities, features or both"
        if target_classes * source_classes >= 1 << 32:
            raise InvalidInput("target_classes", f"Y·Z = {target_classes}·{source_classes} must stay below 2^32")
        if feature_width:
            try:
                wire.check_feature_width(feature_width, target_classes)
            except wire.WireError as error:
                raise InvalidInput("features", str(error)) from None
        self.producer = producer
        self.run, self.model, self.dataset = run, model, dataset
        self.shard, self.shards = shard, shards
        self.source_classes, self.target_classes = source_classes, target_classes
        self.eep_accuracy = eep_accuracy
        self.feature_width = feature_width
        #: What messages call the shard's input: its predictions, or its features when alone.
        self._input_name = "predictions" if source_classes else "features"
        try:
            self.rows_per_chunk = wire.rows_per_chunk(source_classes, dtype, producer.max_message_bytes,
                                                      requested_rows, feature_width, feature_dtype)
        except wire.WireError as error:
            raise InvalidInput("rows_per_chunk" if requested_rows is not None and requested_rows < 1
                               else self._input_name, str(error)) from None
        self.rows_sent = 0
        self.chunk_bytes = 0
        self._chunks: list[tuple[int, int]] = []
        self._locations: dict[int, tuple[int, int]] = {}
        self._errors: list[str] = []

    def send(self, first_row: int, theta: np.ndarray | None, labels: np.ndarray,
             features: np.ndarray | None = None) -> None:
        assert (theta is None) == (self.source_classes == 0), "every chunk of a run with probabilities carries them"
        assert (features is None) == (self.feature_width == 0), "every chunk of a run with features carries them"
        frame = wire.encode_chunk(self.run, self.model, self.dataset, shard=self.shard, shard_count=self.shards,
                                  first_row=first_row, target_classes=self.target_classes, labels=labels,
                                  probabilities=theta, features=features)
        if len(frame) > self.producer.max_message_bytes:
            raise InvalidInput(self._input_name, f"a chunk frame of {len(frame)} bytes exceeds the "
                                                 f"{self.producer.max_message_bytes}-byte message limit (are the names "
                                                 f"very long?)")
        index = len(self._chunks)
        rows = labels.shape[0]
        self._chunks.append((first_row, rows))
        self.producer._produce(self.producer.chunks_topic, frame, None, self._delivered(index, first_row, rows))
        self.rows_sent = first_row + rows
        self.chunk_bytes += len(frame)

    def _delivered(self, index: int, first_row: int, rows: int) -> Callable[[Any, Any], None]:
        def callback(error: Any, message: Any) -> None:
            if error is not None:
                self._errors.append(f"chunk of rows {first_row}..<{first_row + rows}: {error}")
            else:
                self._locations[index] = (message.partition(), message.offset())
        return callback

    def check_deliveries(self) -> None:
        self.producer._poll()
        if self._errors:
            raise DeliveryError(f"run {self.run} shard {self.shard}: " + "; ".join(self._errors[:3]))

    def finish(self) -> RunSummary:
        """Waits for every chunk's delivery report, then publishes and waits for the manifest."""
        self.producer._wait(f"run {self.run} shard {self.shard} chunks")
        self.check_deliveries()
        missing = len(self._chunks) - len(self._locations)
        if missing:
            raise DeliveryError(f"run {self.run} shard {self.shard}: {missing} chunks have no delivery report")
        located = sorted(wire.ChunkLocation(first, rows, *self._locations[index])
                         for index, (first, rows) in enumerate(self._chunks))
        parts = wire.encode_manifest_parts(
            self.run, self.model, self.dataset, shard=self.shard, shard_count=self.shards,
            source_classes=self.source_classes, target_classes=self.target_classes, shard_rows=self.rows_sent,
            chunks=located, eep_accuracy=self.eep_accuracy, max_message_bytes=self.producer.max_message_bytes,
            feature_width=self.feature_width)
        partitions: list[int] = []
        errors: list[str] = []

        def delivered(error: Any, message: Any) -> None:
            if error is not None:
                errors.append(str(error))
            else:
                partitions.append(message.partition())

        key = self.run.encode("utf-8")
        for part in parts:
            self.producer._produce(self.producer.runs_topic, part, key, delivered)
        self.producer._wait(f"run {self.run} shard {self.shard} manifest")
        if errors or len(partitions) != len(parts):
            raise DeliveryError(f"run {self.run} shard {self.shard} manifest not delivered: {'; '.join(errors)}")
        return RunSummary(
            run=self.run, model=self.model, dataset=self.dataset, shard=self.shard, shards=self.shards,
            rows=self.rows_sent, chunks=len(located), chunk_bytes=self.chunk_bytes,
            source_classes=self.source_classes, target_classes=self.target_classes, eep_accuracy=self.eep_accuracy,
            rows_per_chunk=self.rows_per_chunk, manifest_parts=len(parts), manifest_partition=partitions[0],
            locations=tuple(located), feature_width=self.feature_width)


def _check_identity(model: str, dataset: str, run: str | None, shard: int, shards: int) -> str:
    """The run id to use; refuses what `leep produce` refuses."""
    if not 1 <= shards <= 0xFFFF_FFFF or not 0 <= shard < shards:
        raise InvalidInput("shard", f"shard {shard} of {shards}: need 0 ≤ shard < shards")
    if shards > 1 and run is None:
        raise InvalidInput("run", f"required with shards = {shards} > 1: every shard must name the same run")
    for name, value in (("model", model), ("dataset", dataset), ("run", run if run is not None else "run")):
        if not isinstance(value, str) or not 1 <= len(value.encode("utf-8")) <= _MAX_NAME_BYTES:
            raise InvalidInput(name, f"must be a string of 1 to {_MAX_NAME_BYTES} bytes of UTF-8")
    return run if run is not None else default_run_id(model, dataset)
