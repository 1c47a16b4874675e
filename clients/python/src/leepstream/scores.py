"""Reading what leepstream publishes: the score records of `<prefix>scores` (JSON keyed by the
(model, data set) pair, docs/score-record.schema.json) as typed objects, a run's outcome,
a data set's leaderboard with its verdicts, and the leaderboard as it changes.

    from leepstream import ScoreSubscriber

    scores = ScoreSubscriber("127.0.0.1:9092")
    record = scores.wait(summary.run, timeout=600)            # the run's final (or failed) record
    board = scores.leaderboard("pets", rank_by="leep")       # latest record per model, ranked
    board.to_pandas()                                         # with pandas installed
    for board in scores.watch("pets"):                        # each time it changes
        print(board.best)

Verdicts come from certified bounds only: a final LEEP bounds itself; a run whose pass 1 is
merged (`bracketed`, or `progress` in pass 2) has the exact bracket `leep_lower` ≤ LEEP ≤
`leep_upper`. A model whose upper bound is below another model's lower bound cannot win on LEEP
and is marked `dominated_by` that model.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Iterator, Mapping

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition

#: Statuses after which a run publishes nothing more.
OUTCOMES = frozenset({"final", "failed", "incomplete"})

# The keys `ScoreRecord` reads itself; every other key with a number or null is a feature metric.
_INT_KEYS = ("n", "source_classes", "target_classes", "feature_width", "pass", "chunks_accepted", "chunks_expected",
             "tasks_done", "tasks_expected", "partials_dropped", "chunks_repaired", "rows_seen", "sampled_rows")
_FLOAT_KEYS = ("leep", "leep_lower", "leep_upper", "nce", "eep_accuracy", "leep_estimate", "leep_estimate_low",
               "leep_estimate_high")
_STRING_KEYS = ("model", "dataset", "run", "status", "reason", "dominated_by")


class RunTimeout(TimeoutError):
    """`wait` ran out of time: the run's id and the last status seen (None: no record at all)."""

    def __init__(self, run: str, timeout: float, last: ScoreRecord | None):
        self.run = run
        self.last = last
        seen = "no record of it was seen" if last is None else f"its last record was {last.status!r}" + (
            f" ({last.progress_summary()})" if last.progress_summary() else "")
        super().__init__(f"run {run!r} has no outcome after {timeout:g} s: {seen}")


class InvalidScoreRecord(ValueError):
    """A record of the score topic that is not a score record (where it is, and why)."""


@dataclass(frozen=True)
class ScoreRecord:
    """One record of the score topic. Every key of the schema is an attribute (None when the
    record does not carry it); the feature metrics are in `metrics` (a value, or None with the
    reason in `unscored`); `score(key)` reads any of them by key."""

    model: str
    dataset: str
    run: str
    status: str
    leep: float | None = None
    leep_lower: float | None = None
    leep_upper: float | None = None
    nce: float | None = None
    eep_accuracy: float | None = None
    n: int | None = None
    source_classes: int | None = None
    target_classes: int | None = None
    feature_width: int | None = None
    #: 1 or 2 while in progress (the key `pass` in JSON).
    pass_: int | None = None
    chunks_accepted: int | None = None
    chunks_expected: int | None = None
    tasks_done: int | None = None
    tasks_expected: int | None = None
    reason: str | None = None
    partials_dropped: int | None = None
    chunks_repaired: int | None = None
    dominated_by: str | None = None
    #: A `streaming` record (pass 1): rows merged so far, the estimate of the final LEEP from the
    #: rows sampled among them, its 95 % interval, and the sample's size. Its `leep_lower` and
    #: `leep_upper` bracket the LEEP of the rows so far, not the run's: they certify nothing.
    rows_seen: int | None = None
    leep_estimate: float | None = None
    leep_estimate_low: float | None = None
    leep_estimate_high: float | None = None
    sampled_rows: int | None = None
    #: Feature metrics by key: a number, or None when undefined for the data (reason in `unscored`).
    metrics: Mapping[str, float | None] = field(default_factory=lambda: MappingProxyType({}))
    unscored: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: Where the record was read (None for a record built from JSON alone) and its timestamp (s).
    partition: int | None = None
    offset: int | None = None
    timestamp: float | None = None

    @classmethod
    def from_json(cls, value: bytes | str | Mapping[str, Any], *, partition: int | None = None,
                  offset: int | None = None, timestamp: float | None = None) -> ScoreRecord:
        """Reads one record; `InvalidScoreRecord` names the key that is wrong."""
        where = "" if partition is None else f" (partition {partition}, offset {offset})"
        if isinstance(value, Mapping):
            obj = dict(value)
        else:
            try:
                obj = json.loads(value)
            except (ValueError, UnicodeDecodeError) as error:
                raise InvalidScoreRecord(f"score record{where} is not JSON: {error}") from None
        if not isinstance(obj, dict):
            raise InvalidScoreRecord(f"score record{where} is not a JSON object")
        fields: dict[str, Any] = {}
        for key in _STRING_KEYS:
            value_ = obj.get(key)
            if value_ is None and key in ("model", "dataset", "run", "status"):
                raise InvalidScoreRecord(f"score record{where} has no {key!r}")
            if value_ is not None and not isinstance(value_, str):
                raise InvalidScoreRecord(f"score record{where}: {key!r} is {value_!r}, not a string")
            fields[key] = value_
        for key in _INT_KEYS:
            value_ = obj.get(key)
            if value_ is not None and (isinstance(value_, bool) or not isinstance(value_, int)):
                raise InvalidScoreRecord(f"score record{where}: {key!r} is {value_!r}, not an integer")
            fields["pass_" if key == "pass" else key] = value_
        for key in _FLOAT_KEYS:
            fields[key] = _number(obj.get(key), key, where)
        unscored = obj.get("unscored") or {}
        if not isinstance(unscored, dict) or not all(isinstance(v, str) for v in unscored.values()):
            raise InvalidScoreRecord(f"score record{where}: 'unscored' is not an object of reasons")
        known = set(_STRING_KEYS) | set(_INT_KEYS) | set(_FLOAT_KEYS) | {"unscored"}
        metrics = {key: _number(v, key, where) for key, v in obj.items() if key not in known}
        return cls(**fields, metrics=MappingProxyType(metrics), unscored=MappingProxyType(dict(unscored)),
                   partition=partition, offset=offset, timestamp=timestamp)

    def score(self, key: str) -> float | None:
        """The value of `key`: "leep", "nce", "eep_accuracy" or a feature metric's key."""
        if key in _FLOAT_KEYS:
            return getattr(self, key)
        return self.metrics.get(key)

    @property
    def is_outcome(self) -> bool:
        """True for the last record of a run: final, failed or incomplete."""
        return self.status in OUTCOMES

    @property
    def certified_bounds(self) -> tuple[float, float] | None:
        """Bounds on the run's final LEEP that hold exactly: (LEEP, LEEP) for a final record,
        the bracket once pass 1 is merged (`bracketed`, `progress` in pass 2); None otherwise."""
        if self.status == "final" and self.leep is not None:
            return self.leep, self.leep
        if self.status in ("bracketed", "progress") and self.leep_lower is not None \
                and self.leep_upper is not None:
            return self.leep_lower, self.leep_upper
        return None

    def progress_summary(self) -> str:
        """A short account of how far the run got, for messages."""
        if self.reason:
            return self.reason
        if self.tasks_expected is not None:
            return f"pass {self.pass_ or 2}: {self.tasks_done or 0} of {self.tasks_expected} tasks"
        if self.rows_seen is not None:
            return f"pass 1: {self.rows_seen} rows merged"
        if self.chunks_accepted is not None:
            total = "?" if self.chunks_expected is None else str(self.chunks_expected)
            return f"{self.chunks_accepted} of {total} chunks"
        return ""

    def as_dict(self) -> dict[str, Any]:
        """The record's keys and values as in JSON (absent keys left out)."""
        out: dict[str, Any] = {}
        for key in _STRING_KEYS + _INT_KEYS + _FLOAT_KEYS:
            value = getattr(self, "pass_" if key == "pass" else key)
            if value is not None:
                out[key] = value
        out.update(self.metrics)
        if self.unscored:
            out["unscored"] = dict(self.unscored)
        return out


def _number(value: Any, key: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidScoreRecord(f"score record{where}: {key!r} is {value!r}, not a finite number or null")
    return float(value)


@dataclass(frozen=True)
class LeaderboardEntry:
    """One model's line: its latest record, its rank by the board's score (None: no such score
    yet) and, on LEEP, the model that certainly beats it."""

    record: ScoreRecord
    rank: int | None
    value: float | None
    dominated_by: str | None

    @property
    def model(self) -> str:
        return self.record.model


@dataclass(frozen=True)
class Leaderboard:
    """A data set's models, best first by `rank_by`; models without that score yet come last,
    in the order first seen. `dominated_by` marks, on LEEP, each model whose certified upper
    bound is below another model's certified lower bound."""

    dataset: str
    rank_by: str
    entries: tuple[LeaderboardEntry, ...]

    def __iter__(self) -> Iterator[LeaderboardEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> LeaderboardEntry:
        return self.entries[index]

    @property
    def records(self) -> list[ScoreRecord]:
        return [entry.record for entry in self.entries]

    @property
    def best(self) -> LeaderboardEntry | None:
        """The first ranked entry, if any."""
        return self.entries[0] if self.entries and self.entries[0].rank is not None else None

    @property
    def contenders(self) -> list[str]:
        """Models that can still win on LEEP (not dominated)."""
        return [entry.model for entry in self.entries if entry.dominated_by is None]

    def to_pandas(self) -> Any:
        """The board as a `pandas.DataFrame` (pandas is optional: `pip install leepstream[pandas]`),
        one row per model: rank, model, the score, status, the bracket, dominated_by, run, n, and
        every feature metric a record carries."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Leaderboard.to_pandas needs pandas: pip install 'leepstream[pandas]'") from None
        rows = []
        for entry in self.entries:
            record = entry.record
            rows.append({"rank": entry.rank, "model": record.model, self.rank_by: entry.value, "status": record.status,
                         "leep_lower": record.leep_lower, "leep_upper": record.leep_upper,
                         "dominated_by": entry.dominated_by, "run": record.run, "n": record.n,
                         **{key: value for key, value in record.metrics.items() if key != self.rank_by}})
        return pd.DataFrame(rows)

    @classmethod
    def of(cls, dataset: str, records: Iterable[ScoreRecord], rank_by: str = "leep") -> Leaderboard:
        """The board of `records` (each model's latest of `dataset`, as given)."""
        latest = [record for record in records if record.dataset == dataset]
        verdicts = dominance(latest)
        ranked = sorted((r for r in latest if r.score(rank_by) is not None), key=lambda r: -r.score(rank_by))
        unranked = [r for r in latest if r.score(rank_by) is None]
        entries = [LeaderboardEntry(r, index + 1, r.score(rank_by), verdicts.get(r.model))
                   for index, r in enumerate(ranked)]
        entries += [LeaderboardEntry(r, None, None, verdicts.get(r.model)) for r in unranked]
        return cls(dataset, rank_by, tuple(entries))


def dominance(records: Iterable[ScoreRecord]) -> dict[str, str]:
    """model → the model that certainly beats it on LEEP: the one with the highest certified
    lower bound, when that is above the model's certified upper bound (docs/transferability.md,
    "Verdicts")."""
    bounds = {record.model: record.certified_bounds for record in records}
    bounded = {model: b for model, b in bounds.items() if b is not None}
    verdicts: dict[str, str] = {}
    for model, (_, upper) in bounded.items():
        # The highest lower bound; of equal ones, the first model by name (as `leep scores`).
        rivals = sorted((-lower, other) for other, (lower, _) in bounded.items() if other != model)
        if not rivals:
            continue
        lower, leader = -rivals[0][0], rivals[0][1]
        if lower > upper:
            verdicts[model] = leader
    return verdicts


@dataclass(frozen=True)
class Verdict:
    """Where one run stands against the other models of its data set, for an inference loop
    that may stop early (`ShardStream.verdict()`).

    `dominated_by` is certain: the run's certified upper bound (its bracket once pass 1 is
    merged, or its final LEEP) is below `leader`'s certified lower bound. `likely_loses` is a
    bet while pass 1 streams: the upper end of the run's 95 % interval (`estimate_high`) is below
    `leader_lower`, which holds only as far as the estimate's assumptions do
    (docs/transferability.md, section 10: rows in random order; measured coverage 69-89 %)."""

    run: str
    #: The run's latest record (None before the aggregator published one).
    record: ScoreRecord | None
    #: The other model with the highest certified lower bound on LEEP, and that bound.
    leader: str | None
    leader_lower: float | None
    dominated_by: str | None

    @property
    def estimate_high(self) -> float | None:
        return None if self.record is None else self.record.leep_estimate_high

    @property
    def likely_loses(self) -> bool:
        high = self.estimate_high
        return self.dominated_by is not None or (
            high is not None and self.leader_lower is not None and high < self.leader_lower)

    @classmethod
    def of(cls, run: str, model: str, latest: Iterable[ScoreRecord]) -> Verdict:
        """The verdict on `run` (of `model`) among `latest`, the latest record of every model of
        its data set."""
        records = list(latest)
        own = next((r for r in records if r.run == run), None)
        # The highest certified lower bound; of equal ones, the first model by name.
        rivals = sorted((-r.certified_bounds[0], r.model) for r in records
                        if r.model != model and r.certified_bounds is not None)
        leader_lower, leader = (-rivals[0][0], rivals[0][1]) if rivals else (None, None)
        dominated = None
        if own is not None and own.certified_bounds is not None and leader_lower is not None \
                and own.certified_bounds[1] < leader_lower:
            dominated = leader
        return cls(run, own, leader, leader_lower, dominated)


class ScoreSubscriber:
    """Reads `<prefix>scores` with confluent-kafka, without joining a consumer group (every
    partition assigned, no offsets committed): any number of subscribers read the same records.

    `config` holds further librdkafka properties (security, ...)."""

    def __init__(self, brokers: str, topic_prefix: str = "leep.", config: Mapping[str, Any] | None = None):
        self.topic = f"{topic_prefix}scores"
        self._settings: dict[str, Any] = {
            "bootstrap.servers": brokers,
            # Never used to commit: a group id is required by the client, not by this reader.
            "group.id": f"leepstream-subscriber-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
        self._settings.update(config or {})

    # -- reading ------------------------------------------------------------------------------

    def records(self, *, from_beginning: bool = True, dataset: str | None = None, model: str | None = None,
                run: str | None = None, until_caught_up: bool = False, timeout: float | None = None,
                invalid: str = "raise") -> Iterator[ScoreRecord]:
        """Score records as they are read, in each partition's order, optionally only those of
        `dataset`, `model` and `run`. From the beginning of the (compacted) topic, or from now.
        Ends when every partition is read up to where it ended at the call (`until_caught_up`),
        after `timeout` seconds, or never. `invalid="skip"` passes over records that are not
        score records instead of raising `InvalidScoreRecord`."""
        for record in self._read(from_beginning, until_caught_up, timeout, invalid):
            if record is None:
                continue
            if dataset is not None and record.dataset != dataset:
                continue
            if model is not None and record.model != model:
                continue
            if run is not None and record.run != run:
                continue
            yield record

    def latest(self, dataset: str | None = None) -> list[ScoreRecord]:
        """The latest record of every (model, data set) pair on the topic now (of `dataset`)."""
        board: dict[tuple[str, str], ScoreRecord] = {}
        for record in self.records(dataset=dataset, until_caught_up=True):
            _keep_latest(board, record)
        return list(board.values())

    def wait(self, run: str, timeout: float = 600.0) -> ScoreRecord:
        """The outcome of `run` — its final, failed or incomplete record — as soon as
        it is on the topic (read from the beginning, so an outcome published before the call is
        found). `RunTimeout` after `timeout` seconds names the run and the last status seen."""
        last: ScoreRecord | None = None
        for record in self.records(run=run, timeout=timeout):
            last = record
            if record.is_outcome:
                return record
        raise RunTimeout(run, timeout, last)

    def leaderboard(self, dataset: str, rank_by: str = "leep") -> Leaderboard:
        """The latest record of every model on `dataset`, ranked by `rank_by` (any score key:
        "leep", "nce", "logme", ...), higher first, with the verdicts on LEEP."""
        return Leaderboard.of(dataset, self.latest(dataset), rank_by)

    def watch(self, dataset: str, rank_by: str = "leep", timeout: float | None = None) -> Iterator[Leaderboard]:
        """The leaderboard of `dataset` once the topic is read up to now, then again each time
        a record changes it, until `timeout` seconds have passed (or for ever)."""
        board: dict[tuple[str, str], ScoreRecord] = {}
        caught_up = False
        shown: tuple[Any, ...] | None = None
        for record in self._read(True, False, timeout, "skip", signal_caught_up=True):
            if record is None:
                caught_up = True
            elif record.dataset == dataset:
                _keep_latest(board, record)
            if not caught_up:
                continue
            current = Leaderboard.of(dataset, board.values(), rank_by)
            fingerprint = tuple((e.record.run, e.record.status, e.value, e.dominated_by, e.record.leep_lower,
                                 e.record.leep_upper, e.record.leep_estimate) for e in current)
            if fingerprint != shown:
                shown = fingerprint
                yield current

    # -- the consumer ---------------------------------------------------------------------------

    def _read(self, from_beginning: bool, until_caught_up: bool, timeout: float | None, invalid: str,
              signal_caught_up: bool = False) -> Iterator[ScoreRecord | None]:
        """Records of every partition; None once when every partition reached the end it had at
        the start (with `signal_caught_up`)."""
        consumer = Consumer(self._settings)
        try:
            metadata = consumer.list_topics(self.topic, timeout=30)
            topic = metadata.topics.get(self.topic)
            if topic is None or topic.error is not None or not topic.partitions:
                raise KafkaException(topic.error if topic is not None and topic.error else
                                     KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, f"no topic {self.topic}"))
            partitions = sorted(topic.partitions)
            # Where each partition ends now, as a lower bound: caught up means an
            # end-of-partition event at or past it. Records' offsets cannot say: the last
            # offsets may hold no record a reader sees (transaction markers, compacted records),
            # and a broker may answer an end short of the truth (Tansu's ListOffsets counts
            # batches), while the fetch's end is exact.
            ends = {p: consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=30)[1] for p in partitions}
            start = OFFSET_BEGINNING if from_beginning else OFFSET_END
            consumer.assign([TopicPartition(self.topic, p, start) for p in partitions])
            behind = set(partitions) if from_beginning else set()
            if not behind and (until_caught_up or signal_caught_up):
                if until_caught_up:
                    return
                yield None
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                wait = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
                if wait <= 0:
                    return
                message = consumer.poll(wait)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        # The end of what a fetch returned, which may be short of the end
                        # captured at the start: only reaching that one counts.
                        if message.offset() < ends[message.partition()]:
                            continue
                        was_behind = bool(behind)
                        behind.discard(message.partition())
                        if was_behind and not behind:
                            if until_caught_up:
                                return
                            if signal_caught_up:
                                yield None
                        continue
                    raise KafkaException(error)
                partition, offset = message.partition(), message.offset()
                value = message.value()
                if value is None:
                    continue  # a tombstone
                stamp_type, stamp = message.timestamp()
                try:
                    record = ScoreRecord.from_json(value, partition=partition, offset=offset,
                                                   timestamp=stamp / 1000 if stamp_type and stamp >= 0 else None)
                except InvalidScoreRecord:
                    if invalid != "skip":
                        raise
                    record = None
                if record is not None:
                    yield record
        finally:
            consumer.close()


def _keep_latest(board: dict[tuple[str, str], ScoreRecord], record: ScoreRecord) -> None:
    """Keeps `record` as its pair's latest, unless the pair's run already ended and this is a
    late record of the same run (an aggregator replaying): an outcome is not undone."""
    key = (record.model, record.dataset)
    existing = board.get(key)
    if existing is not None and existing.run == record.run and existing.is_outcome and not record.is_outcome:
        return
    board[key] = record
