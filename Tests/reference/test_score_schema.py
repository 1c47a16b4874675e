"""docs/score-record.schema.json accepts the score records the aggregator publishes and refuses
malformed ones.

The first five VALID_RECORDS strings are byte-for-byte what Swift's ScoreRecord encodes with the
aggregator's JSONEncoder settings (sorted keys, slashes not escaped, nil fields omitted):
Tests/WireFormatTests/GoldenFixtureTests.swift checks the same strings from the Swift side, so
the schema is tested against real encoder output, not only against hand-written JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "score-record.schema.json"

VALID_RECORDS = {
    "progress": '{"chunks_accepted":3,"chunks_expected":8,"dataset":"cifar10","model":"resnet50",'
    '"pass":1,"run":"r1","source_classes":1000,"status":"progress"}',
    # eep_accuracy 1.0 is written `1` by JSONEncoder: "type": "number" must accept it.
    "final": '{"dataset":"cifar10","eep_accuracy":1,"leep":-0.6931,"leep_lower":-0.9,"leep_upper":-0.5,'
    '"model":"resnet50","n":10000,"nce":-0.5,"run":"r1","source_classes":1000,"status":"final","target_classes":10}',
    # Pass 1 streaming: the bracket of the joint so far and the estimate from the sampled rows.
    "streaming": '{"chunks_accepted":3,"dataset":"cifar10","leep_estimate":-0.7,"leep_estimate_high":-0.6,'
    '"leep_estimate_low":-0.8,"leep_lower":-0.9,"leep_upper":-0.5,"model":"resnet50","pass":1,"rows_seen":3000,"run":"r1",'
    '"sampled_rows":47,"source_classes":1000,"status":"streaming"}',
    # Pass 1 merged: the bracket, before pass 2.
    "bracketed": '{"dataset":"cifar10","leep_lower":-0.9,"leep_upper":-0.5,"model":"resnet50","n":10000,"run":"r1",'
    '"source_classes":1000,"status":"bracketed","target_classes":10}',
    "failed": '{"dataset":"cifar10","model":"vit-b/16","reason":"shard 1 rows 0..<64: row 3: sums to 1.5",'
    '"run":"r2","source_classes":1000,"status":"failed"}',
    # A metric undefined for the run's data is null, with its reason; the others are numbers.
    "final with features": '{"dataset":"cifar10","feature_width":5,"gbc_diagonal":0,"gbc_spherical":0,'
    '"hscore":4,"hscore_shrinkage":3.98,"ledoit_wolf_shrinkage":0.005,"leep":-0.1,"leep_lower":-0.3,"leep_upper":-0.05,'
    '"logme":null,"model":"onehot",'
    '"n":3000,"nce":-0.2,"run":"r3","source_classes":5,"status":"final","target_classes":5,"transrate":10.7,'
    '"unscored":{"logme":"the features fit class 1 exactly: the evidence is unbounded"}}',
    # A model without a softmax head: features alone, no LEEP family.
    "final of features alone": '{"dataset":"cifar10","feature_width":768,"gbc_diagonal":-1.5,"gbc_spherical":-2,'
    '"hscore":3.1,"hscore_shrinkage":3,"ledoit_wolf_shrinkage":0.01,"logme":-0.7,"model":"dinov2-s","n":500,'
    '"run":"r4","sfda":0.61,"sfda_shrinkage":1e-10,"status":"final","target_classes":10,"transrate":4.2}',
}


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_schema_is_draft_2020_12(validator: Draft202012Validator) -> None:
    assert validator.schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("name", sorted(VALID_RECORDS))
def test_published_records_are_valid(validator: Draft202012Validator, name: str) -> None:
    errors = list(validator.iter_errors(json.loads(VALID_RECORDS[name])))
    assert errors == [], [error.message for error in errors]


def test_progress_in_pass_2_and_incomplete_are_valid(validator: Draft202012Validator) -> None:
    validator.validate({
        "model": "m", "dataset": "d", "run": "r", "status": "progress", "pass": 2,
        "chunks_accepted": 8, "chunks_expected": 8, "tasks_done": 1, "tasks_expected": 4,
        "source_classes": 3, "target_classes": 2,
    })
    validator.validate({"model": "m", "dataset": "d", "run": "r", "status": "incomplete", "reason": "stalled"})
    # A run that failed before its identity was known has empty names.
    validator.validate({"model": "", "dataset": "", "run": "r", "status": "failed", "reason": "bad chunk"})


def _final() -> dict:
    return json.loads(VALID_RECORDS["final"])


def _without(record: dict, key: str) -> dict:
    return {k: v for k, v in record.items() if k != key}


INVALID_RECORDS = {
    "final without leep": _without(_final(), "leep"),
    "final without n": _without(_final(), "n"),
    "final without target_classes": _without(_final(), "target_classes"),
    "unknown status": {**_final(), "status": "done"},
    "failed without reason": _without(json.loads(VALID_RECORDS["failed"]), "reason"),
    "incomplete without reason": {"model": "m", "dataset": "d", "run": "r", "status": "incomplete"},
    "missing run": _without(json.loads(VALID_RECORDS["progress"]), "run"),
    "null instead of omitted": {**_final(), "nce": None},
    "leep as a string": {**_final(), "leep": "-0.69"},
    "fractional n": {**_final(), "n": 10.5},
    "zero source classes": {**_final(), "source_classes": 0},
    "accuracy above 1": {**_final(), "eep_accuracy": 1.5},
    "pass 5": {**json.loads(VALID_RECORDS["progress"]), "pass": 5},
    "features alone with leep": {**json.loads(VALID_RECORDS["final of features alone"]), "leep": -0.5},
    "camelCase key": {**_without(_final(), "eep_accuracy"), "eepAccuracy": 1},
    "final without its bracket": _without(_final(), "leep_upper"),
    "bracketed with leep": {**json.loads(VALID_RECORDS["bracketed"]), "leep": -0.7},
    "bracketed without n": _without(json.loads(VALID_RECORDS["bracketed"]), "n"),
    "streaming without rows_seen": _without(json.loads(VALID_RECORDS["streaming"]), "rows_seen"),
    "an estimate without its interval": _without(json.loads(VALID_RECORDS["streaming"]), "leep_estimate_low"),
    "features alone with a bracket": {**json.loads(VALID_RECORDS["final of features alone"]), "leep_lower": -0.5},
}


@pytest.mark.parametrize("name", sorted(INVALID_RECORDS))
def test_malformed_records_are_refused(validator: Draft202012Validator, name: str) -> None:
    assert not validator.is_valid(INVALID_RECORDS[name]), name
