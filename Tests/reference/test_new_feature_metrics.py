"""Cross-check of GBC, TransRate and SFDA in `leep score --features … --json` against the float64
reference (feature_reference.py: gbc, transrate, sfda; feature_scores for the whole object).

Every case is written as .npy files, scored by the binary (with several --threads values: each
thread scores a slice of the rows and the slices merge, so the thread count is the chunking) and
by the reference on the very same loaded arrays, and compared key by key: gbc_diagonal,
gbc_spherical, transrate, sfda, sfda_shrinkage — and the older scores alongside — to 1e-8
relative (1e-12 absolute near zero: GBC of well separated classes is −0.0), the counts exactly.
A value the reference leaves undefined must be null in the binary's output and named in its
"unscored" object, and the other way round.

The cases are test_feature_cross_check.py's (its generators and its CASES: D > n, D = 1, Y = 2, a
class of one sample, offsets 1e4 and 1e5, float16 and float32 input, clustered classes), plus a
label gap, one present class, and features that make LogME undefined.

These tests need the new binary: they are skipped when $LEEP_BIN is not set (ops/test sets it);
when it is set, a missing binary fails (conftest.py).
"""

from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from feature_reference import feature_scores
from test_feature_cross_check import (
    ABS_TOL,
    CASES,
    REL_TOL,
    Case,
    gaussian_case,
    parse_json,
    relative_difference,
    singleton_class_case,
    write_case,
)

pytestmark = pytest.mark.skipif(
    not os.environ.get("LEEP_BIN"),
    reason="LEEP_BIN is not set: the GBC / TransRate / SFDA cross-check needs the new leep binary")

NEW_KEYS = ("gbc_diagonal", "gbc_spherical", "transrate", "sfda", "sfda_shrinkage")
OLD_KEYS = ("logme", "hscore", "hscore_shrinkage", "ledoit_wolf_shrinkage")
COUNT_KEYS = ("n", "target_classes", "feature_width")
THREADS = (1, 4)


def run_score(leep_bin: Path, features: Path, labels: Path, *, threads: int | None = None,
              target_classes: int | None = None, timeout: float = 600):
    command = [str(leep_bin), "score", "--features", str(features), "--labels", str(labels), "--json"]
    if threads is not None:
        command += ["--threads", str(threads)]
    if target_classes is not None:
        command += ["--target-classes", str(target_classes)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def assert_matches_reference(actual: dict, expected: dict, label: str) -> None:
    """Same keys; numbers to REL_TOL (ABS_TOL near 0); None ⇔ null and named in "unscored"."""
    problems = []
    if set(actual) != set(expected):
        problems.append(f"keys: binary {sorted(actual)}, reference {sorted(expected)}")
    for key in COUNT_KEYS:
        if type(actual.get(key)) is not int or actual.get(key) != expected[key]:
            problems.append(f"{key}: binary {actual.get(key)!r}, reference {expected[key]!r}")
    unscored = actual.get("unscored", {})
    if not isinstance(unscored, dict) or not all(isinstance(v, str) and v for v in unscored.values()):
        problems.append(f"unscored must map keys to reasons, got {unscored!r}")
        unscored = {}
    if set(unscored) != set(expected.get("unscored", {})):
        problems.append(f"unscored: binary {sorted(unscored)}, reference {sorted(expected.get('unscored', {}))}")
    for key in OLD_KEYS + NEW_KEYS:
        value, reference = actual.get(key, "missing"), expected[key]
        if reference is None:
            if value is not None:
                reason = expected.get("unscored", {}).get(key, "null with its metric")
                problems.append(f"{key}: binary {value!r}, reference undefined ({reason})")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{key}: binary {value!r} is not a number (reference {reference!r}; "
                            f"binary's reason: {unscored.get(key)!r})")
        elif not math.isclose(value, reference, rel_tol=REL_TOL, abs_tol=ABS_TOL):
            problems.append(f"{key}: binary {value!r}, reference {reference!r} "
                            f"(rel {relative_difference(value, reference):.3e})")
    assert not problems, f"{label}: mismatch\n  " + "\n  ".join(problems)


def cross_check(leep_bin: Path, tmp_path: Path, case: Case, threads=THREADS) -> dict:
    """Writes `case`, scores it with each thread count and with the reference, compares; returns
    the reference's object."""
    features, labels = write_case(case, tmp_path)
    on_disk, labels_on_disk = np.load(features), np.load(labels)
    assert on_disk.dtype == case.features.dtype
    expected = feature_scores(on_disk, labels_on_disk, case.target_classes)
    for count in threads:
        actual = parse_json(run_score(leep_bin, features, labels, threads=count,
                                      target_classes=case.target_classes))
        assert_matches_reference(actual, expected,
                                 f"{case.features.dtype} {case.features.shape}, --threads {count}")
    return expected


# --------------------------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_new_metrics_on_the_cross_check_cases(leep_bin, tmp_path, name):
    case = CASES[name]()
    expected = cross_check(leep_bin, tmp_path, case)
    classes = np.unique(case.labels).size
    assert -classes * (classes - 1) <= expected["gbc_diagonal"] <= 0
    assert -classes * (classes - 1) <= expected["gbc_spherical"] <= 0
    assert 0 < expected["sfda"] <= 1 and 1e-10 <= expected["sfda_shrinkage"] <= 1
    assert "unscored" not in expected


@pytest.mark.parametrize("threads", [2, 3, 7, 16])
def test_chunkings(leep_bin, tmp_path, threads):
    """More slices than classes, a class of one sample in one slice only, D > n."""
    for stem, case in (("one-sample-", singleton_class_case(500)),
                       ("wide-", gaussian_case(501, n=50, width=80, classes=3, dtype=np.float32))):
        directory = tmp_path / stem
        directory.mkdir()
        cross_check(leep_bin, directory, case, threads=(threads,))


def test_d_near_n_sfda_saturates(leep_bin, tmp_path):
    """D ≥ n − K (TencentARC/SFDA issue 5): the shrinkage is at or near its floor 1e-10, B is
    ill-conditioned but not numerically singular, and SFDA ≈ 1 is reported, not unscored."""
    rng = np.random.default_rng(510)
    features = (3.0 * rng.normal(size=(60, 200))).astype(np.float32)
    labels = rng.integers(0, 4, size=60)
    labels[:4] = np.arange(4)
    expected = cross_check(leep_bin, tmp_path, Case(features, labels.astype(np.int64)))
    assert expected["sfda"] > 1 - 1e-6 and expected["sfda_shrinkage"] < 1e-8


def test_label_gap_present_classes(leep_bin, tmp_path):
    """Labels {0, 1, 3, 4} with --target-classes 7: GBC, TransRate and SFDA use the 4 present
    classes (tllib's TransRate would divide by zero, SFDA's fit would see NaN)."""
    case = gaussian_case(520, n=400, width=8, classes=5, separation=0.8)
    case.labels[case.labels == 2] = 4
    case.target_classes = 7
    expected = cross_check(leep_bin, tmp_path, case)
    compact = np.searchsorted(np.array([0, 1, 3, 4]), case.labels)
    again = feature_scores(case.features, compact)
    for key in NEW_KEYS:
        assert expected[key] == again[key], key


def test_one_present_class(leep_bin, tmp_path):
    """One class: no pair for GBC and nothing to mix towards for SFDA — both null and unscored
    (sfda_shrinkage null with sfda); TransRate (exactly 0) and the older scores are defined."""
    rng = np.random.default_rng(530)
    case = Case(rng.normal(size=(200, 6)).astype(np.float32), np.full(200, 2, dtype=np.int64))
    expected = cross_check(leep_bin, tmp_path, case)
    assert set(expected["unscored"]) == {"gbc_diagonal", "gbc_spherical", "sfda"}
    assert expected["transrate"] == 0.0 and expected["sfda_shrinkage"] is None


def test_logme_undefined_is_null_and_the_rest_is_scored(leep_bin, tmp_path):
    """Features = one-hot of the labels (5 classes, 3000 rows): LogME fits every class exactly and
    is not finite — exit status 0, "logme": null, an "unscored" entry for logme.  Every class's
    rows are identical, so SFDA has no within-class scatter either (sfda unscored, sfda and
    sfda_shrinkage null).  H-score (= 4), the shrinkage H-score, GBC (−0.0) and TransRate are present
    and match the reference."""
    labels = np.random.default_rng(540).integers(0, 5, size=3000)
    labels[:5] = np.arange(5)
    case = Case(np.eye(5, dtype=np.float32)[labels], labels.astype(np.int64))
    features, labels_path = write_case(case, tmp_path)
    result = run_score(leep_bin, features, labels_path)
    assert result.returncode == 0, result.stderr
    actual = parse_json(result)
    assert actual.get("logme", "missing") is None, f"logme: {actual.get('logme', 'missing')!r}, expected null"
    assert "logme" in actual.get("unscored", {}), f"no unscored entry for logme: {actual.get('unscored')!r}"
    expected = feature_scores(np.load(features), np.load(labels_path))
    assert set(expected["unscored"]) == {"logme", "sfda"}
    assert_matches_reference(actual, expected, "one-hot features")
    for key in ("hscore", "hscore_shrinkage", "ledoit_wolf_shrinkage", "gbc_diagonal", "gbc_spherical",
                "transrate"):
        assert isinstance(actual[key], (int, float)), key
    assert math.isclose(actual["hscore"], 4.0, rel_tol=1e-9)


@pytest.mark.slow
def test_new_metrics_large(leep_bin, tmp_path):
    case = gaussian_case(550, n=8000, width=768, classes=20, dtype=np.float32, separation=0.3)
    cross_check(leep_bin, tmp_path, case, threads=(1, 16))
