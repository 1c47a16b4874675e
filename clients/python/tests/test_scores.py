"""Score records as typed objects, verdicts and leaderboards, without a broker. Reading them
from a real score topic, as the Swift aggregator publishes them, is
Tests/integration/test_python_subscriber.py."""

from __future__ import annotations

import json

import pytest

from leepstream import InvalidScoreRecord, Leaderboard, ScoreRecord, dominance
from leepstream.scores import _keep_latest

FINAL = ('{"dataset":"cifar10","eep_accuracy":1,"leep":-0.6931,"leep_lower":-0.9,"leep_upper":-0.5,'
         '"model":"resnet50","n":10000,"nce":-0.5,"run":"r1","source_classes":1000,"status":"final",'
         '"target_classes":10}')
FEATURES = ('{"dataset":"cifar10","feature_width":5,"hscore":4,"logme":null,"model":"onehot","n":3000,"run":"r3",'
            '"status":"final","target_classes":5,"unscored":{"logme":"the features fit class 1 exactly"}}')


def record(model: str, status: str = "final", dataset: str = "d", run: str | None = None, **keys) -> ScoreRecord:
    return ScoreRecord.from_json({"model": model, "dataset": dataset, "run": run or f"{model}@{dataset}",
                                  "status": status, **keys})


def test_every_key_is_read_with_its_type():
    parsed = ScoreRecord.from_json(FINAL.encode(), partition=2, offset=7, timestamp=1.5)
    assert (parsed.model, parsed.dataset, parsed.run, parsed.status) == ("resnet50", "cifar10", "r1", "final")
    assert parsed.leep == -0.6931 and parsed.leep_lower == -0.9 and parsed.leep_upper == -0.5
    assert parsed.eep_accuracy == 1.0 and type(parsed.eep_accuracy) is float  # JSON wrote 1
    assert parsed.n == 10000 and parsed.source_classes == 1000 and parsed.target_classes == 10
    assert (parsed.partition, parsed.offset, parsed.timestamp) == (2, 7, 1.5)
    assert parsed.as_dict() == json.loads(FINAL)
    assert parsed.is_outcome and parsed.certified_bounds == (-0.6931, -0.6931)


def test_feature_metrics_and_their_reasons():
    parsed = ScoreRecord.from_json(FEATURES)
    assert parsed.metrics == {"hscore": 4.0, "logme": None}
    assert parsed.score("hscore") == 4.0 and parsed.score("logme") is None
    assert parsed.unscored == {"logme": "the features fit class 1 exactly"}
    assert parsed.leep is None and parsed.certified_bounds is None
    assert parsed.as_dict() == json.loads(FEATURES)


@pytest.mark.parametrize("value, message", [
    (b"not json", "not JSON"),
    (b"[1]", "not a JSON object"),
    (b'{"model":"m","dataset":"d","run":"r"}', "no 'status'"),
    (b'{"model":"m","dataset":"d","run":"r","status":"final","n":1.5}', "'n' is 1.5, not an integer"),
    (b'{"model":"m","dataset":"d","run":"r","status":"final","leep":"x"}', "'leep' is 'x'"),
    (b'{"model":"m","dataset":"d","run":"r","status":"final","unscored":[1]}', "'unscored'"),
])
def test_what_is_not_a_score_record_is_named(value, message):
    with pytest.raises(InvalidScoreRecord, match=message) as raised:
        ScoreRecord.from_json(value, partition=1, offset=9)
    assert "partition 1, offset 9" in str(raised.value)


def test_bounds_are_certified_once_pass_1_is_merged_not_while_streaming():
    assert record("a", "bracketed", leep_lower=-1.0, leep_upper=-0.5).certified_bounds == (-1.0, -0.5)
    assert record("a", "progress", **{"pass": 2}, leep_lower=-1.0, leep_upper=-0.5).certified_bounds == (-1.0, -0.5)
    assert record("a", "progress", **{"pass": 1}).certified_bounds is None
    assert record("a", "failed", reason="x").certified_bounds is None


def test_a_model_below_another_models_lower_bound_is_dominated():
    records = [
        record("best", leep=-0.2),
        record("close", "bracketed", leep_lower=-0.6, leep_upper=-0.1),   # overlaps best: can still win
        record("behind", "bracketed", leep_lower=-1.4, leep_upper=-0.7),  # below best's -0.2
        record("worse", leep=-0.9),
        record("running", "progress", **{"pass": 1}),                     # no bounds: no verdict
    ]
    assert dominance(records) == {"behind": "best", "worse": "best"}
    # Ties go to the first model by name, as in `leep scores`.
    assert dominance([record("b", leep=-0.1), record("a", leep=-0.1), record("c", leep=-0.5)]) == {"c": "a"}


def test_the_leaderboard_ranks_by_any_score_and_lists_the_rest_after():
    records = [record("m1", leep=-0.5, hscore=2.0), record("m2", leep=-0.3, hscore=1.0),
               record("m3", "bracketed", leep_lower=-2.0, leep_upper=-0.6),
               record("other-dataset", dataset="e", leep=0.0)]
    board = Leaderboard.of("d", records)
    assert [(e.model, e.rank, e.value, e.dominated_by) for e in board] == [
        ("m2", 1, -0.3, None), ("m1", 2, -0.5, "m2"), ("m3", None, None, "m2")]
    assert board.best.model == "m2" and board.contenders == ["m2"]
    by_hscore = Leaderboard.of("d", records, rank_by="hscore")
    assert [e.model for e in by_hscore] == ["m1", "m2", "m3"]


def test_the_leaderboard_as_a_dataframe():
    pd = pytest.importorskip("pandas")
    board = Leaderboard.of("d", [record("m1", leep=-0.5, hscore=2.0), record("m2", leep=-0.3)])
    frame = board.to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["model"]) == ["m2", "m1"] and list(frame["rank"]) == [1, 2]
    assert frame.loc[1, "dominated_by"] == "m2" and frame.loc[1, "hscore"] == 2.0


def test_a_late_record_of_a_run_does_not_undo_its_outcome():
    board: dict = {}
    final = record("m", leep=-0.5, run="r1")
    _keep_latest(board, final)
    _keep_latest(board, record("m", "progress", run="r1", **{"pass": 2}))  # an aggregator replaying
    assert board[("m", "d")] is final
    newer = record("m", "progress", run="r2", **{"pass": 1})                # a new run of the pair
    _keep_latest(board, newer)
    assert board[("m", "d")] is newer


def test_a_streaming_record_carries_its_estimate_and_certifies_nothing():
    value = {"model": "m", "dataset": "d", "run": "r", "status": "streaming", "pass": 1, "rows_seen": 3000,
             "leep_lower": -0.9, "leep_upper": -0.5, "leep_estimate": -0.7, "leep_estimate_low": -0.8,
             "leep_estimate_high": -0.6, "sampled_rows": 47}
    parsed = ScoreRecord.from_json(value)
    assert (parsed.rows_seen, parsed.leep_estimate, parsed.sampled_rows) == (3000, -0.7, 47)
    assert parsed.certified_bounds is None and not parsed.is_outcome
    assert parsed.as_dict() == value and parsed.progress_summary() == "pass 1: 3000 rows merged"
    # A streaming record never rules a model out, however low its bracket of the rows so far.
    assert dominance([parsed, record("other", leep=0.0)]) == {}


def test_a_verdict_is_certain_when_dominated_and_a_bet_while_streaming():
    from leepstream import Verdict
    leader = record("leader", leep=-0.3)
    streaming = record("m", "streaming", run="r", **{"pass": 1}, rows_seen=500, leep_lower=-0.2, leep_upper=-0.1,
                       leep_estimate=-0.9, leep_estimate_low=-1.0, leep_estimate_high=-0.8, sampled_rows=40)
    verdict = Verdict.of("r", "m", [leader, streaming])
    assert (verdict.leader, verdict.leader_lower, verdict.dominated_by) == ("leader", -0.3, None)
    assert verdict.estimate_high == -0.8 and verdict.likely_loses
    hopeful = Verdict.of("r", "m", [leader, record("m", "streaming", run="r", **{"pass": 1}, rows_seen=9,
                                                    leep_lower=-0.5, leep_upper=0.0, leep_estimate=-0.4,
                                                    leep_estimate_low=-0.6, leep_estimate_high=-0.2, sampled_rows=9)])
    assert not hopeful.likely_loses
    bracketed = Verdict.of("r", "m", [leader, record("m", "bracketed", run="r", leep_lower=-1.2, leep_upper=-0.4)])
    assert bracketed.dominated_by == "leader" and bracketed.likely_loses
    alone = Verdict.of("r", "m", [])
    assert alone.record is None and alone.leader is None and not alone.likely_loses
