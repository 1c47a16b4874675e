"""Cross-check of `leep score --json` against the float64 NumPy reference (leep_reference.py).

Every case is generated with a fixed seed into pytest's tmp_path, written as .npy files, scored
by the binary and by the reference on the very same (loaded) arrays, and compared key by key:
floats to 1e-9 relative (1e-12 absolute near zero), integers exactly.

The binary is $LEEP_BIN or <repo>/.build/release/leep (see conftest.py); a missing binary fails.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import leep_reference
from leep_reference import empirical_conditional, leep_scores

FLOAT_KEYS = ("leep", "leep_lower", "leep_upper", "nce", "eep_accuracy")
INT_KEYS = ("n", "source_classes", "target_classes")
REL_TOL = 1e-9
ABS_TOL = 1e-12


# --------------------------------------------------------------------------------------------
# Case generation
# --------------------------------------------------------------------------------------------


@dataclass
class Case:
    theta: np.ndarray  # as written to disk (float16/32/64)
    labels: np.ndarray  # as written to disk (any integer dtype)
    target_classes: int | None = None  # passed as --target-classes when not None
    extra: dict = field(default_factory=dict)


def dirichlet_case(
    seed: int,
    n: int,
    num_source: int,
    num_target: int,
    dtype=np.float32,
    label_dtype=np.int64,
    alpha: float = 0.1,
    label_noise: float = 0.3,
    dead_columns: tuple[int, ...] = (),
) -> Case:
    """Dirichlet(α) softmax rows; labels follow a fixed map of argmax_z θ_iz, with some noise.

    Rows are normalised in float64 and then cast to `dtype`; the cast rows are checked to still
    sum to 1 (within 1e-6 for float32/64, within 5e-4 for float16 — the CLI accepts 1e-3).
    `dead_columns` are source classes that never receive any mass (all-zero columns).
    """
    rng = np.random.default_rng(seed)
    theta = rng.dirichlet(np.full(num_source, alpha), size=n)
    if dead_columns:
        theta[:, list(dead_columns)] = 0.0
    theta /= theta.sum(axis=1, keepdims=True)
    theta = np.ascontiguousarray(theta.astype(dtype))

    sums = theta.astype(np.float64).sum(axis=1)
    tolerance = 5e-4 if theta.dtype == np.float16 else 1e-6
    assert np.all(np.abs(sums - 1.0) <= tolerance), f"max row error {np.abs(sums - 1).max()}"

    # Each source class maps to a target class (every target class is hit when Z ≥ Y); the label
    # is the mapped argmax of the stored row, replaced by a uniform label with prob. label_noise.
    if num_source >= num_target:
        source_to_target = rng.permutation(np.arange(num_source) % num_target)
    else:
        source_to_target = rng.integers(0, num_target, size=num_source)
    labels = source_to_target[np.argmax(theta, axis=1)]
    noisy = rng.random(n) < label_noise
    labels[noisy] = rng.integers(0, num_target, size=int(noisy.sum()))
    labels[-1] = num_target - 1  # so the default Y = max label + 1 is exactly num_target
    return Case(theta=theta, labels=np.ascontiguousarray(labels.astype(label_dtype)))


def one_hot_deterministic_case(seed: int, n: int, num_source: int, num_target: int) -> Case:
    """One-hot θ whose source class determines the label: P(y_i | ẑ_i) = 1, so LEEP = NCE = 0."""
    rng = np.random.default_rng(seed)
    z = rng.integers(0, num_source, size=n)
    z[:num_source] = np.arange(num_source)  # every source class used
    theta = np.zeros((n, num_source), dtype=np.float32)
    theta[np.arange(n), z] = 1.0
    labels = (z % num_target).astype(np.int32)
    return Case(theta=theta, labels=labels)


def write_case(case: Case, directory: Path) -> tuple[Path, Path]:
    predictions = directory / "predictions.npy"
    labels = directory / "labels.npy"
    np.save(predictions, np.ascontiguousarray(case.theta), allow_pickle=False)
    np.save(labels, np.ascontiguousarray(case.labels), allow_pickle=False)
    return predictions, labels


# --------------------------------------------------------------------------------------------
# Running and comparing
# --------------------------------------------------------------------------------------------


def run_leep(leep_bin: Path, predictions: Path, labels: Path, target_classes=None, json_out=True):
    # EEP accuracy is opt-in; the cross-check compares it too.
    command = [str(leep_bin), "score", "--predictions", str(predictions), "--labels", str(labels),
               "--eep-accuracy"]
    if target_classes is not None:
        command += ["--target-classes", str(target_classes)]
    if json_out:
        command.append("--json")
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def binary_scores(leep_bin: Path, predictions: Path, labels: Path, target_classes=None) -> dict:
    result = run_leep(leep_bin, predictions, labels, target_classes)
    assert result.returncode == 0, (
        f"leep exited with {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    try:
        scores = json.loads(result.stdout)  # the whole of stdout must be one JSON value
    except json.JSONDecodeError as error:
        pytest.fail(f"stdout is not exactly one JSON object ({error}):\n{result.stdout}")
    assert isinstance(scores, dict), f"expected a JSON object, got {result.stdout!r}"
    return scores


def assert_scores_match(actual: dict, expected: dict, label: str = "") -> None:
    assert set(actual) == set(FLOAT_KEYS + INT_KEYS), f"{label}: keys {sorted(actual)}"
    problems = []
    for key in INT_KEYS:
        value = actual[key]
        if type(value) is not int or value != expected[key]:
            problems.append(f"{key}: binary {value!r} ({type(value).__name__}), "
                            f"reference {expected[key]!r}")
    for key in FLOAT_KEYS:
        value = actual[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{key}: binary {value!r} is not a number")
        elif not math.isclose(value, expected[key], rel_tol=REL_TOL, abs_tol=ABS_TOL):
            diff = value - expected[key]
            rel = abs(diff) / abs(expected[key]) if expected[key] else math.inf
            problems.append(f"{key}: binary {value!r}, reference {expected[key]!r} "
                            f"(diff {diff:.3e}, rel {rel:.3e})")
    assert not problems, f"{label}: mismatch\n  " + "\n  ".join(problems)


def cross_check(leep_bin: Path, tmp_path: Path, case: Case) -> dict:
    """Writes `case`, scores it both ways, compares; returns the reference scores."""
    predictions, labels = write_case(case, tmp_path)
    # Score the reference on what is on disk, exactly as the binary reads it.
    theta_on_disk = np.load(predictions)
    labels_on_disk = np.load(labels)
    assert theta_on_disk.dtype == case.theta.dtype and labels_on_disk.dtype == case.labels.dtype
    expected = leep_scores(theta_on_disk, labels_on_disk, case.target_classes)
    actual = binary_scores(leep_bin, predictions, labels, case.target_classes)
    assert_scores_match(actual, expected, label=f"{case.theta.dtype}/{case.labels.dtype}")
    return expected


# --------------------------------------------------------------------------------------------
# Cross-check cases
# --------------------------------------------------------------------------------------------

DIRICHLET_CASES = {
    "large_Z1000_Y100_float32": dict(seed=1, n=5000, num_source=1000, num_target=100),
    "large_Z1000_Y100_float64": dict(
        seed=2, n=4000, num_source=1000, num_target=100, dtype=np.float64
    ),
    "dead_source_columns": dict(
        seed=3, n=2000, num_source=300, num_target=30, dead_columns=(0, 17, 299)
    ),
    "two_target_classes": dict(seed=4, n=1000, num_source=50, num_target=2, dtype=np.float64),
    "more_target_than_source": dict(seed=5, n=800, num_source=6, num_target=40, alpha=0.5),
    "float16_Z20": dict(seed=6, n=3000, num_source=20, num_target=8, dtype=np.float16, alpha=0.5),
    "float16_Z50": dict(seed=7, n=2000, num_source=50, num_target=12, dtype=np.float16),
    "peaked_float32_low_noise": dict(
        seed=8, n=3000, num_source=200, num_target=20, alpha=0.02, label_noise=0.05
    ),
}


@pytest.mark.parametrize("name", list(DIRICHLET_CASES))
def test_dirichlet_cases(leep_bin, tmp_path, name):
    case = dirichlet_case(**DIRICHLET_CASES[name])
    if name == "dead_source_columns":
        assert np.all(case.theta[:, [0, 17, 299]] == 0)
    expected = cross_check(leep_bin, tmp_path, case)
    # Non-trivial scores: strictly between the extremes.
    assert expected["leep"] < -1e-3 and expected["nce"] < -1e-3
    assert 0 < expected["eep_accuracy"] < 1


LABEL_DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]


@pytest.mark.parametrize("label_dtype", LABEL_DTYPES, ids=lambda t: np.dtype(t).name)
def test_label_dtypes(leep_bin, tmp_path, label_dtype):
    # Y = 100 fits every width (int8 tops out at 127); the same seed gives the same scores.
    case = dirichlet_case(
        seed=20, n=1500, num_source=200, num_target=100, label_dtype=label_dtype
    )
    expected = cross_check(leep_bin, tmp_path, case)
    same_as_int64 = leep_scores(case.theta, case.labels.astype(np.int64))
    assert expected == same_as_int64


def test_single_sample(leep_bin, tmp_path):
    # n = 1: P(y_0 | z) = 1 wherever θ_0z > 0, so EEP_0 = Σ_z θ_0z and LEEP = log Σ_z θ_0z (≈ 0,
    # but not exactly: the float32 row sums to 1 only up to rounding); NCE = 0, the EEP is right.
    rng = np.random.default_rng(30)
    theta = rng.dirichlet(np.ones(10), size=1).astype(np.float32)
    case = Case(theta=theta, labels=np.array([3], dtype=np.int64))  # Y = 4, classes 0–2 empty
    expected = cross_check(leep_bin, tmp_path, case)
    assert expected["n"] == 1 and expected["target_classes"] == 4
    row_sum = float(theta.astype(np.float64).sum())
    assert math.isclose(expected["leep"], math.log(row_sum), rel_tol=1e-12, abs_tol=1e-15)
    assert abs(expected["leep"]) < 1e-6 and expected["nce"] == 0.0
    assert expected["eep_accuracy"] == 1.0


@pytest.mark.parametrize("extra_classes", [0, 15])
def test_explicit_target_classes(leep_bin, tmp_path, extra_classes):
    case = dirichlet_case(seed=40, n=1200, num_source=60, num_target=10)
    case.target_classes = 10 + extra_classes  # ≥ max label + 1; extra classes have no samples
    expected = cross_check(leep_bin, tmp_path, case)
    assert expected["target_classes"] == 10 + extra_classes


def test_one_hot_deterministic_gives_zero(leep_bin, tmp_path):
    case = one_hot_deterministic_case(seed=50, n=500, num_source=40, num_target=10)
    predictions, labels = write_case(case, tmp_path)
    actual = binary_scores(leep_bin, predictions, labels)
    expected = leep_scores(case.theta, case.labels)
    assert_scores_match(actual, expected, label="one-hot")
    for scores, who in ((actual, "binary"), (expected, "reference")):
        assert abs(scores["leep"]) <= 1e-12, f"{who} LEEP {scores['leep']!r} is not 0"
        assert abs(scores["nce"]) <= 1e-12, f"{who} NCE {scores['nce']!r} is not 0"
        assert scores["eep_accuracy"] == 1.0, f"{who} EEP accuracy {scores['eep_accuracy']!r}"


def test_hand_computed_example_with_argmax_tie(leep_bin, tmp_path):
    # θ = [[½, ½], [1, 0]], y = [0, 1].
    # P(y,z) = [[¼, ¼], [½, 0]], P(z) = [¾, ¼], P(y|z=0) = [⅓, ⅔], P(y|z=1) = [1, 0].
    # EEP_0 = ½·⅓ + ½·1 = ⅔, EEP_1 = 1·⅔ = ⅔  →  LEEP = log ⅔.
    # ẑ = [0 (tie → lowest), 0], c(0,0) = c(1,0) = 1, c_0 = 2  →  NCE = log ½.
    # EEP distributions: sample 0 → [⅔, ⅓] (right), sample 1 → [⅓, ⅔] (right)  →  accuracy 1.
    case = Case(
        theta=np.array([[0.5, 0.5], [1.0, 0.0]], dtype=np.float64),
        labels=np.array([0, 1], dtype=np.int64),
    )
    expected = cross_check(leep_bin, tmp_path, case)
    assert math.isclose(expected["leep"], math.log(2 / 3), rel_tol=1e-15)
    assert math.isclose(expected["nce"], math.log(0.5), rel_tol=1e-15)
    assert expected["eep_accuracy"] == 1.0


def test_exact_ties_resolve_to_lowest_index(leep_bin, tmp_path):
    # Uniform θ and two labels: ẑ_i = 0 for all i, and the EEP distribution is exactly [½, ½]
    # for every sample, so the EEP predicts y = 0: only the y = 0 sample is right.
    case = Case(
        theta=np.full((2, 2), 0.5, dtype=np.float32),
        labels=np.array([1, 0], dtype=np.uint8),
    )
    expected = cross_check(leep_bin, tmp_path, case)
    assert expected["eep_accuracy"] == 0.5
    assert math.isclose(expected["leep"], math.log(0.5), rel_tol=1e-15)
    assert math.isclose(expected["nce"], math.log(0.5), rel_tol=1e-15)


def test_rows_within_tolerance_are_scored_as_given(leep_bin, tmp_path):
    # Rows off 1 by 5e-4 (inside the CLI's 1e-3) are accepted and scored without renormalising.
    case = dirichlet_case(seed=60, n=600, num_source=30, num_target=5, dtype=np.float64)
    scale = np.where(np.arange(600) % 2 == 0, 1 + 5e-4, 1 - 5e-4)
    case.theta = np.ascontiguousarray(case.theta * scale[:, None])
    cross_check(leep_bin, tmp_path, case)


def test_rows_not_summing_to_one_are_rejected(leep_bin, tmp_path):
    case = dirichlet_case(seed=61, n=100, num_source=30, num_target=5, dtype=np.float64)
    case.theta[7] *= 1.01
    predictions, labels = write_case(case, tmp_path)
    result = run_leep(leep_bin, predictions, labels)
    assert result.returncode != 0, f"accepted a row summing to 1.01:\n{result.stdout}"
    with pytest.raises(ValueError):
        leep_scores(case.theta, case.labels)


# --------------------------------------------------------------------------------------------
# Sanity of the reference itself (no binary needed)
# --------------------------------------------------------------------------------------------


def _random_inputs(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    num_source = int(rng.integers(1, 60))
    num_target = int(rng.integers(1, 25))
    alpha = float(rng.choice([0.05, 0.3, 1.0, 5.0]))
    theta = rng.dirichlet(np.full(num_source, alpha), size=n)
    labels = rng.integers(0, num_target, size=n)
    extra = int(rng.integers(0, 3))  # sometimes target classes without samples
    return theta, labels, int(labels.max()) + 1 + extra


@pytest.mark.parametrize("seed", range(40))
def test_reference_bounds(seed):
    """0 ≥ LEEP ≥ Σ P(y,z) log P(y|z) = −H(Y|Z) ≥ Σ P(y) log P(y) = −H(Y), and LEEP inside its
    bracket [−H(Y|Z), log mean EEP_i].

    The first inequality holds because EEP_i ≤ 1, the second by Jensen (log is concave and θ_i is
    a distribution over z), the third because conditioning does not increase entropy.
    """
    theta, labels, num_target = _random_inputs(seed)
    scores = leep_scores(theta, labels, num_target)
    conditional, joint = empirical_conditional(theta, labels, num_target)
    cells = joint > 0
    neg_cond_entropy = float(np.sum(joint[cells] * np.log(conditional[cells])))
    p_y = joint.sum(axis=1)
    neg_entropy = float(np.sum(p_y[p_y > 0] * np.log(p_y[p_y > 0])))

    slack = 1e-12
    assert scores["leep"] <= slack
    assert scores["leep"] >= neg_cond_entropy - slack
    # The bracket of pass 1 (docs/transferability.md, section 9): its lower bound is −H(Y|Z), its
    # upper bound the log of the mean expected prediction, computed here row by row.
    assert math.isclose(scores["leep_lower"], neg_cond_entropy, rel_tol=1e-12, abs_tol=1e-14)
    mean_prediction = float(np.mean(np.sum(theta * conditional[labels], axis=1)))
    assert math.isclose(scores["leep_upper"], max(neg_cond_entropy, math.log(mean_prediction)),
                        rel_tol=1e-12, abs_tol=1e-14)
    assert scores["leep_lower"] - slack <= scores["leep"] <= scores["leep_upper"] + slack
    assert neg_cond_entropy >= neg_entropy - slack
    assert scores["nce"] <= slack and scores["nce"] >= neg_entropy - slack
    assert 0.0 <= scores["eep_accuracy"] <= 1.0
    assert all(type(scores[k]) is float for k in FLOAT_KEYS)
    assert all(type(scores[k]) is int for k in INT_KEYS)


def _loop_scores(theta, labels, num_target):
    """The definitions written out with plain Python loops, for tiny inputs."""
    n, num_source = len(theta), len(theta[0])
    joint = [[0.0] * num_source for _ in range(num_target)]
    for i in range(n):
        for z in range(num_source):
            joint[labels[i]][z] += theta[i][z] / n
    p_z = [sum(joint[y][z] for y in range(num_target)) for z in range(num_source)]
    cond = [[joint[y][z] / p_z[z] if p_z[z] > 0 else 0.0 for z in range(num_source)]
            for y in range(num_target)]
    leep = sum(math.log(sum(theta[i][z] * cond[labels[i]][z] for z in range(num_source)))
               for i in range(n)) / n

    z_hat = [max(range(num_source), key=lambda z: (theta[i][z], -z)) for i in range(n)]
    counts = [[0] * num_source for _ in range(num_target)]
    for i in range(n):
        counts[labels[i]][z_hat[i]] += 1
    nce = 0.0
    for z in range(num_source):
        c_z = sum(counts[y][z] for y in range(num_target))
        for y in range(num_target):
            if counts[y][z] > 0:
                nce += counts[y][z] / n * math.log(counts[y][z] / c_z)

    right = 0
    for i in range(n):
        eep = [sum(theta[i][z] * cond[y][z] for z in range(num_source)) for y in range(num_target)]
        right += max(range(num_target), key=lambda y: (eep[y], -y)) == labels[i]
    return leep, nce, right / n


@pytest.mark.parametrize("seed", range(10))
def test_reference_matches_plain_loops(seed):
    theta, labels, num_target = _random_inputs(100 + seed)
    theta, labels = theta[:60, :12], labels[:60]
    theta = theta / theta.sum(axis=1, keepdims=True)
    labels = np.minimum(labels, num_target - 1)
    scores = leep_scores(theta, labels, num_target)
    leep, nce, accuracy = _loop_scores(theta.tolist(), labels.tolist(), num_target)
    assert math.isclose(scores["leep"], leep, rel_tol=1e-12, abs_tol=1e-14)
    assert math.isclose(scores["nce"], nce, rel_tol=1e-12, abs_tol=1e-14)
    assert scores["eep_accuracy"] == accuracy


def test_reference_cli_prints_same_json(tmp_path):
    case = dirichlet_case(seed=70, n=300, num_source=40, num_target=6, dtype=np.float16)
    predictions, labels = write_case(case, tmp_path)
    script = Path(leep_reference.__file__)
    result = subprocess.run(
        [sys.executable, str(script), str(predictions), str(labels), "--target-classes", "9"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert json.loads(result.stdout) == leep_scores(case.theta, case.labels, 9)


def test_reference_rejects_bad_inputs():
    theta = np.full((3, 2), 0.5)
    with pytest.raises(ValueError):
        leep_scores(theta, np.array([0, 1, 2]), target_classes=2)  # label ≥ Y
    with pytest.raises(ValueError):
        leep_scores(theta, np.array([0, -1, 1]))  # negative label
    with pytest.raises(ValueError):
        leep_scores(theta, np.array([0, 1]))  # length mismatch
    with pytest.raises(ValueError):
        leep_scores(theta, np.array([0.0, 1.0, 1.0]))  # non-integer labels
