"""Cross-check of `leep score --features … --json` against the float64 NumPy reference
(feature_reference.py): LogME, H-score and shrinkage H-score.

Every case is generated with a fixed seed into pytest's tmp_path, written as .npy files, scored by
the binary and by the reference on the very same (loaded) arrays, and compared key by key: the
three scores and the Ledoit–Wolf shrinkage α to 1e-8 relative (1e-12 absolute near zero), the
counts exactly.  Bad inputs are
refused with a message on stderr, a nonzero exit and nothing on stdout.

The second half needs no binary: it checks the reference itself against independent
computations (hand formulas, the Ledoit–Wolf paper's formula, the evidence without an
eigen-decomposition, 40-digit arithmetic), the merge identities of docs/transferability.md, and
the scores computed from those merged sufficient statistics alone.

The binary is $LEEP_BIN or <repo>/.build/release/leep (see conftest.py); a missing binary fails.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import feature_reference
from feature_reference import (
    class_evidence,
    feature_scores,
    gram_spectrum,
    hscore,
    hscore_shrinkage,
    ledoit_wolf,
    logme,
    pinv_rcond,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import thuml_features  # noqa: E402  (the published algorithms, rewritten: bench/thuml_features.py)

SCORE_KEYS = ("logme", "hscore", "hscore_shrinkage")
#: Compared like the scores (1e-8 relative, 1e-12 absolute: it is exactly 0 for D = 1).
CHECKED_KEYS = SCORE_KEYS + ("ledoit_wolf_shrinkage",)
COUNT_KEYS = ("n", "target_classes", "feature_width")
REL_TOL = 1e-8
ABS_TOL = 1e-12


# --------------------------------------------------------------------------------------------
# Case generation
# --------------------------------------------------------------------------------------------


@dataclass
class Case:
    features: np.ndarray  # as written to disk (float16/32/64)
    labels: np.ndarray  # as written to disk
    target_classes: int | None = None  # passed as --target-classes when not None


def gaussian_case(seed: int, n: int, width: int, classes: int, dtype=np.float32,
                  separation: float = 1.0, offset: float = 0.0) -> Case:
    """Rows offset + centre[y_i] + N(0, I): class centres N(0, separation² I), every class used.

    `separation` sets how far apart the classes are (0: labels independent of the features);
    `offset` is a common shift of every feature.  Labels are uniform, with the first `classes`
    rows forced to 0 … Y − 1 so that every class has a sample and Y = max label + 1.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=n)
    labels[:classes] = np.arange(classes)
    centres = separation * rng.normal(size=(classes, width))
    features = offset + centres[labels] + rng.normal(size=(n, width))
    return Case(np.ascontiguousarray(features.astype(dtype)), labels.astype(np.int64))


def singleton_class_case(seed: int) -> Case:
    """Y = 4 where class 2 has exactly one sample."""
    case = gaussian_case(seed, n=300, width=12, classes=4, separation=1.0)
    labels = case.labels.copy()
    labels[labels == 2] = 3
    labels[17] = 2
    case.labels = labels
    assert np.count_nonzero(labels == 2) == 1 and labels.max() == 3
    return case


def write_case(case: Case, directory: Path, stem: str = "") -> tuple[Path, Path]:
    features = directory / f"{stem}features.npy"
    labels = directory / f"{stem}labels.npy"
    np.save(features, np.ascontiguousarray(case.features), allow_pickle=False)
    np.save(labels, np.ascontiguousarray(case.labels), allow_pickle=False)
    return features, labels


def dirichlet_predictions(seed: int, n: int, num_source: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    theta = rng.dirichlet(np.full(num_source, 0.3), size=n)
    return np.ascontiguousarray(theta.astype(np.float64))


# --------------------------------------------------------------------------------------------
# Running and comparing
# --------------------------------------------------------------------------------------------


def run_leep(leep_bin: Path, *, features=None, labels=None, predictions=None, target_classes=None,
             json_out: bool = True, timeout: float = 600):
    command = [str(leep_bin), "score"]
    if predictions is not None:
        command += ["--predictions", str(predictions)]
    if features is not None:
        command += ["--features", str(features)]
    command += ["--labels", str(labels)]
    if target_classes is not None:
        command += ["--target-classes", str(target_classes)]
    if json_out:
        command.append("--json")
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def parse_json(result) -> dict:
    assert result.returncode == 0, (
        f"leep exited with {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    try:
        scores = json.loads(result.stdout)  # the whole of stdout must be one JSON value
    except json.JSONDecodeError as error:
        pytest.fail(f"stdout is not exactly one JSON object ({error}):\n{result.stdout}")
    assert isinstance(scores, dict), f"expected a JSON object, got {result.stdout!r}"
    return scores


def relative_difference(actual: float, expected: float) -> float:
    return abs(actual - expected) / abs(expected) if expected else math.inf


def assert_feature_scores_match(actual: dict, expected: dict, label: str = "",
                                exact_keys: bool = True) -> None:
    if exact_keys:
        # The metrics of test_new_feature_metrics.py are checked there; nothing else may appear.
        others = {"gbc_diagonal", "gbc_spherical", "transrate", "sfda", "sfda_shrinkage", "unscored"}
        assert set(CHECKED_KEYS + COUNT_KEYS) <= set(actual) <= set(CHECKED_KEYS + COUNT_KEYS) | others, \
            f"{label}: keys {sorted(actual)}"
    problems = []
    for key in COUNT_KEYS:
        value = actual.get(key)
        if type(value) is not int or value != expected[key]:
            problems.append(f"{key}: binary {value!r}, reference {expected[key]!r}")
    for key in CHECKED_KEYS:
        value = actual.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{key}: binary {value!r} is not a number")
        elif not math.isclose(value, expected[key], rel_tol=REL_TOL, abs_tol=ABS_TOL):
            problems.append(f"{key}: binary {value!r}, reference {expected[key]!r} "
                            f"(rel {relative_difference(value, expected[key]):.3e})")
    assert not problems, f"{label}: mismatch\n  " + "\n  ".join(problems)


def cross_check(leep_bin: Path, tmp_path: Path, case: Case) -> dict:
    """Writes `case`, scores it both ways, compares; returns the reference scores."""
    features, labels = write_case(case, tmp_path)
    on_disk = np.load(features)  # the reference reads what the binary reads, float16 included
    labels_on_disk = np.load(labels)
    assert on_disk.dtype == case.features.dtype
    expected = feature_scores(on_disk, labels_on_disk, case.target_classes)
    actual = parse_json(run_leep(leep_bin, features=features, labels=labels,
                                 target_classes=case.target_classes))
    assert_feature_scores_match(actual, expected, label=f"{case.features.dtype} {case.features.shape}")
    return expected


# --------------------------------------------------------------------------------------------
# Cross-check cases
# --------------------------------------------------------------------------------------------

CASES = {
    # name: a function of no arguments returning the Case
    "ordinary_n500_D16_Y5": lambda: gaussian_case(1, n=500, width=16, classes=5, separation=0.5),
    "d_greater_than_n_n40_D64_Y4": lambda: gaussian_case(2, n=40, width=64, classes=4),
    "d_equals_1": lambda: gaussian_case(3, n=300, width=1, classes=3, dtype=np.float64),
    "two_classes": lambda: gaussian_case(4, n=400, width=10, classes=2, separation=0.7),
    "class_with_one_sample": lambda: singleton_class_case(5),
    # 1e4 + N(0, 1) in float32, the realistic storage; and 1e5 in float64, where eigen-decomposing
    # a formed Gram matrix fᵀf (or M2 + nμμᵀ) misses LogME by ~1e-7 relative: see
    # test_reference_logme_is_accurate_with_a_large_offset and docs/transferability.md.
    "large_offset_1e4": lambda: gaussian_case(7, n=500, width=16, classes=5, dtype=np.float32,
                                              separation=1.0, offset=1e4),
    "large_offset_1e5": lambda: gaussian_case(8, n=500, width=16, classes=5, dtype=np.float64,
                                              separation=0.5, offset=1e5),
    "float16_input": lambda: gaussian_case(7, n=1000, width=32, classes=6, dtype=np.float16),
    "float32_input": lambda: gaussian_case(8, n=2000, width=64, classes=8, dtype=np.float32),
    "clustered": lambda: gaussian_case(9, n=1000, width=32, classes=10, separation=4.0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_feature_cases(leep_bin, tmp_path, name):
    case = CASES[name]()
    expected = cross_check(leep_bin, tmp_path, case)
    n, width = case.features.shape
    classes = int(case.labels.max()) + 1
    if name.startswith("d_greater_than_n"):
        # D ≥ n − 1: cov f has rank n − 1 and H-score = tr(H P) = Y − 1 exactly (H the centring
        # projector, P the class-mean projector, docs/transferability.md).
        assert math.isclose(expected["hscore"], classes - 1, rel_tol=1e-9)
    if name == "clustered":
        # Well separated classes: H-score near its ceiling Y − 1, LogME clearly positive.
        assert expected["hscore"] > 0.9 * (classes - 1) and expected["logme"] > 0.5
    # 0 ≤ H ≤ min(D, Y − 1); the shrinkage H-score divides by a biased S, hence n/(n − 1).
    assert 0 <= expected["hscore"] <= min(width, classes - 1) * (1 + 1e-9)
    assert 0 <= expected["hscore_shrinkage"] <= min(width, classes - 1) * n / (n - 1) * (1 + 1e-9)
    assert expected["n"] == n and expected["feature_width"] == width


@pytest.mark.slow
def test_feature_case_large_n20000_D2048(leep_bin, tmp_path):
    case = gaussian_case(10, n=20_000, width=2048, classes=10, dtype=np.float32, separation=0.3)
    expected = cross_check(leep_bin, tmp_path, case)
    assert expected["feature_width"] == 2048


def test_label_gap_and_extra_target_classes(leep_bin, tmp_path):
    # Labels use {0, 1, 3, 4} and Y = 7 is given: classes 2, 5, 6 have no sample and are left out
    # of LogME's mean (the published code would divide by zero); the H-scores ignore them.
    case = gaussian_case(11, n=400, width=8, classes=5, separation=0.8)
    case.labels[case.labels == 2] = 4
    case.target_classes = 7
    expected = cross_check(leep_bin, tmp_path, case)
    assert expected["target_classes"] == 7
    compact = np.searchsorted(np.array([0, 1, 3, 4]), case.labels)
    assert math.isclose(expected["logme"], logme(case.features, compact), rel_tol=1e-12)


def test_features_do_not_disturb_leep(leep_bin, tmp_path):
    case = gaussian_case(12, n=600, width=24, classes=6, separation=1.0)
    features, labels = write_case(case, tmp_path)
    predictions = tmp_path / "predictions.npy"
    np.save(predictions, dirichlet_predictions(12, n=600, num_source=40), allow_pickle=False)
    alone = parse_json(run_leep(leep_bin, predictions=predictions, labels=labels))
    both = parse_json(run_leep(leep_bin, predictions=predictions, features=features, labels=labels))
    for key in ("leep", "nce", "source_classes", "n", "target_classes"):
        assert both[key] == alone[key], f"{key}: {both[key]!r} with features, {alone[key]!r} without"
    assert set(alone) <= set(both)
    expected = feature_scores(case.features, case.labels)
    assert_feature_scores_match(both, expected, label="with --predictions", exact_keys=False)


# --------------------------------------------------------------------------------------------
# Bad inputs via the command line: a message on stderr, nonzero exit, nothing on stdout
# --------------------------------------------------------------------------------------------


def assert_refused(result, *needles: str, any_of: tuple[str, ...] = ()) -> str:
    assert result.returncode != 0, f"accepted bad input:\n{result.stdout}"
    assert result.stdout == "", f"printed on stdout despite the error:\n{result.stdout}"
    message = result.stderr
    lowered = message.lower()
    for needle in needles:
        assert needle.lower() in lowered, f"{needle!r} not in the error message:\n{message}"
    if any_of:
        assert any(word.lower() in lowered for word in any_of), (
            f"none of {any_of} in the error message:\n{message}")
    return message


def _bad_case(tmp_path: Path, features: np.ndarray, labels: np.ndarray) -> tuple[Path, Path]:
    features_path = tmp_path / "bad-features.npy"
    labels_path = tmp_path / "bad-labels.npy"
    np.save(features_path, features, allow_pickle=False)
    np.save(labels_path, labels, allow_pickle=False)
    return features_path, labels_path


@pytest.mark.parametrize("value,words", [(np.nan, ("nan", "not finite")),
                                         (np.inf, ("inf", "not finite"))], ids=["nan", "inf"])
def test_non_finite_feature_is_refused(leep_bin, tmp_path, value, words):
    case = gaussian_case(20, n=50, width=6, classes=3)
    features = case.features.copy()
    features[37, 4] = value
    features_path, labels_path = _bad_case(tmp_path, features, case.labels)
    message = assert_refused(run_leep(leep_bin, features=features_path, labels=labels_path),
                             "bad-features.npy", any_of=words)
    assert re.search(r"\b37\b", message), f"row 37 not named:\n{message}"


def test_row_count_mismatch_is_refused(leep_bin, tmp_path):
    case = gaussian_case(21, n=100, width=6, classes=3)
    features_path, labels_path = _bad_case(tmp_path, case.features, case.labels[:99])
    message = assert_refused(run_leep(leep_bin, features=features_path, labels=labels_path),
                             any_of=("bad-features.npy", "bad-labels.npy"))
    assert re.search(r"\b100\b", message) and re.search(r"\b99\b", message), (
        f"the two counts (100 feature rows, 99 labels) are not both named:\n{message}")


@pytest.mark.parametrize("shape", [(40,), (10, 4, 2)], ids=["1d", "3d"])
def test_features_not_2d_are_refused(leep_bin, tmp_path, shape):
    features = np.random.default_rng(22).normal(size=shape).astype(np.float32)
    labels = np.zeros(shape[0], dtype=np.int64)
    features_path, labels_path = _bad_case(tmp_path, features, labels)
    assert_refused(run_leep(leep_bin, features=features_path, labels=labels_path), "bad-features.npy")


def test_single_sample_leaves_every_covariance_metric_unscored(leep_bin, tmp_path):
    # One sample is valid input: no metric that needs a covariance is defined, and each says so
    # (null and a reason) instead of failing the command.
    features_path, labels_path = _bad_case(
        tmp_path, np.ones((1, 8), dtype=np.float32), np.zeros(1, dtype=np.int64))
    scores = parse_json(run_leep(leep_bin, features=features_path, labels=labels_path))
    for key in ("logme", "hscore", "hscore_shrinkage"):
        assert scores[key] is None and "1 sample" in scores["unscored"][key], scores


# --------------------------------------------------------------------------------------------
# The reference itself (no binary needed)
# --------------------------------------------------------------------------------------------


def test_reference_hscore_d2_by_hand():
    """D = 2: cov f inverted by the 2×2 formula, both covariances summed by Python loops."""
    case = gaussian_case(30, n=23, width=2, classes=3, dtype=np.float64, separation=1.5)
    rows, labels = case.features.tolist(), case.labels.tolist()
    n = len(rows)
    mean = [sum(r[k] for r in rows) / n for k in range(2)]
    class_mean = {}
    for c in set(labels):
        members = [r for r, y in zip(rows, labels) if y == c]
        class_mean[c] = [sum(r[k] for r in members) / len(members) for k in range(2)]

    def cov(vectors):
        return [[sum((v[i] - mean[i]) * (v[j] - mean[j]) for v in vectors) / (n - 1)
                 for j in range(2)] for i in range(2)]

    (a, b), (_, d) = cov(rows)
    g = cov([class_mean[y] for y in labels])
    det = a * d - b * b
    by_hand = (d * g[0][0] - b * g[1][0] - b * g[0][1] + a * g[1][1]) / det
    assert math.isclose(hscore(case.features, case.labels), by_hand, rel_tol=1e-12)


def test_reference_ledoit_wolf_against_the_paper_formula():
    """Ledoit & Wolf (2004), Lemma 3.2 / Theorem 3.3 with ⟨A, B⟩ = tr(ABᵀ)/p, one sample at a time:
    m = ⟨S, I⟩, d² = ‖S − mI‖², b̄² = n⁻² Σ_k ‖x_k x_kᵀ − S‖², b² = min(b̄², d²),
    shrinkage = b²/d², Σ* = (b²/d²)·m·I + (1 − b²/d²)·S."""
    for seed, (n, p) in enumerate([(30, 5), (12, 20), (200, 3)]):
        x = np.random.default_rng(40 + seed).normal(size=(n, p)) * np.linspace(0.5, 3, p)
        xc = x - x.mean(axis=0)
        s = xc.T @ xc / n
        m = np.trace(s) / p
        d2 = np.sum((s - m * np.eye(p)) ** 2) / p
        b2_bar = sum(np.sum((np.outer(row, row) - s) ** 2) / p for row in xc) / n ** 2
        shrinkage = min(b2_bar, d2) / d2
        expected = shrinkage * m * np.eye(p) + (1 - shrinkage) * s
        covariance, got = ledoit_wolf(x)
        assert math.isclose(got, shrinkage, rel_tol=1e-12)
        assert np.allclose(covariance, expected, rtol=1e-12, atol=0)
        # scikit-learn's blocked accumulation (rewritten in bench/thuml_features.py) agrees,
        # whatever the block size.
        for block_size in (1, 3, 1000):
            cov_blocked, blocked = thuml_features.ledoit_wolf(x, block_size)
            assert math.isclose(blocked, shrinkage, rel_tol=1e-12)
            assert np.allclose(cov_blocked, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("shape", [(300, 10, 4), (40, 64, 3), (200, 1, 2)], ids=str)
def test_reference_logme_against_direct_evidence(shape):
    """Each class's evidence equals the formula evaluated without an eigen-decomposition:
    D/2 log α + n/2 log β − ½ log det(αI + βG) − β/2 ‖y − f m‖² − α/2 ‖m‖² − n/2 log 2π with
    m = β'(α'I + β'G)⁻¹ fᵀy — where (α', β') is the iterate m was computed from and (α, β) the
    final update, as in tllib.  And that value is at most the true evidence L(α, β) (m the
    posterior mean for the final α, β), and within 1e-3 of it."""
    n, width, classes = shape
    case = gaussian_case(50, n=n, width=width, classes=classes, dtype=np.float64)
    f, labels = case.features, case.labels
    gram = f.T @ f
    s, v = gram_spectrum(f)
    identity = np.eye(width)

    def evidence(alpha, beta, m, y_c):
        _, logdet = np.linalg.slogdet(alpha * identity + beta * gram)
        return (width / 2 * math.log(alpha) + n / 2 * math.log(beta) - 0.5 * logdet
                - beta / 2 * np.sum((y_c - f @ m) ** 2) - alpha / 2 * np.sum(m * m)
                - n / 2 * math.log(2 * math.pi)) / n

    for c in range(classes):
        y_c = (labels == c).astype(np.float64)
        state: dict = {}
        score = class_evidence(f, y_c, s, v, state)
        m_then = np.linalg.solve(state["alpha_m"] * identity + state["beta_m"] * gram,
                                 state["beta_m"] * (f.T @ y_c))
        assert math.isclose(score, evidence(state["alpha"], state["beta"], m_then, y_c), rel_tol=1e-10)
        m_now = np.linalg.solve(state["alpha"] * identity + state["beta"] * gram,
                                state["beta"] * (f.T @ y_c))
        true_evidence = evidence(state["alpha"], state["beta"], m_now, y_c)
        assert score <= true_evidence + 1e-12 and true_evidence - score <= 1e-3 * abs(true_evidence)


def test_reference_matches_the_published_algorithms():
    """On well-conditioned data the reference agrees with the rewrite of tllib's code (LogME from
    np.linalg.svd(fᵀf), pinv with rcond = 1e-15, scikit-learn's blocked Ledoit–Wolf) to ~1e-12."""
    for seed, (n, width, classes) in enumerate([(500, 16, 5), (40, 64, 4), (2000, 32, 8)]):
        case = gaussian_case(60 + seed, n=n, width=width, classes=classes, dtype=np.float64)
        f, labels = case.features, case.labels
        ours = feature_scores(f, labels)
        published = {
            "logme": thuml_features.log_maximum_evidence(f, labels),
            "hscore": thuml_features.h_score(f, labels),
            "hscore_shrinkage": thuml_features.regularized_h_score(f, labels, block_size=7),
        }
        for key in SCORE_KEYS:
            assert math.isclose(ours[key], published[key], rel_tol=1e-10), (key, ours[key], published[key])


def _logme_in_mpmath(features: np.ndarray, labels: np.ndarray, digits: int = 40):
    """tllib's LogME on the exact stored values in `digits`-digit arithmetic (mpmath)."""
    import mpmath  # pinned in requirements.txt

    mp = mpmath.mp
    mp.dps = digits
    n, width = features.shape
    rows = [[mp.mpf(float(value)) for value in row] for row in features]
    gram = mp.matrix(width, width)
    for a in range(width):
        for b in range(a, width):
            gram[a, b] = gram[b, a] = mp.fsum(row[a] * row[b] for row in rows)
    eigenvalues, vectors = mp.eigsy(gram)
    s = [abs(eigenvalues[k]) for k in range(width)]
    scores = []
    for c in sorted(set(labels.tolist())):
        y = [1 if label == c else 0 for label in labels.tolist()]
        fy = [mp.fsum(row[a] for row, yi in zip(rows, y) if yi) for a in range(width)]
        t = [mp.fsum(vectors[a, k] * fy[a] for a in range(width)) for k in range(width)]
        alpha = beta = lam = mp.mpf(1)
        for _ in range(11):
            gamma = mp.fsum(sk / (sk + lam) for sk in s)
            w = [t[k] * beta / (alpha + beta * s[k]) for k in range(width)]
            m = [mp.fsum(vectors[a, k] * w[k] for k in range(width)) for a in range(width)]
            alpha_de = mp.fsum(x * x for x in m)
            alpha = gamma / alpha_de
            beta_de = mp.fsum((yi - mp.fsum(r * x for r, x in zip(row, m))) ** 2
                              for row, yi in zip(rows, y))
            beta = (n - gamma) / beta_de
            new_lam = alpha / beta
            if abs(new_lam - lam) / lam < mp.mpf("0.01"):
                break
            lam = new_lam
        evidence = (width * mp.log(alpha) + n * mp.log(beta) - mp.fsum(mp.log(alpha + beta * sk) for sk in s)
                    - beta * beta_de - alpha * alpha_de - n * mp.log(2 * mp.pi)) / 2
        scores.append(evidence / n)
    return mp.fsum(scores) / len(scores)


@pytest.mark.parametrize("name", ["large_offset_1e4", "large_offset_1e5"])
def test_reference_logme_is_accurate_with_a_large_offset(name):
    """The cross-check's large-offset cases against 40-digit arithmetic on the same stored values:
    the reference (G's spectrum from the SVD of f's R factor, G never formed) is within 1e-10.
    Eigen-decomposing a formed G in float64 — tllib's np.linalg.svd(fᵀf), or eigh of fᵀf or of
    M2 + nμμᵀ — misses by up to ~8e-8 relative at 1e4 and ~7e-7 at 1e5 (on this very 1e5 case:
    1.5e-7, 2.8e-8, 1.9e-7 with NumPy's LAPACK; docs/transferability.md, section 5), so it could
    not serve as a 1e-8 reference, and an implementation that does it fails the 1e5 case."""
    case = CASES[name]()
    truth = float(_logme_in_mpmath(case.features, case.labels))
    ours = logme(case.features, case.labels)
    assert relative_difference(ours, truth) <= 1e-10, (ours, truth)
    assert abs(truth) > 0.1  # not a near-zero LogME, where any relative tolerance is meaningless


def test_reference_rank_deficient_hscore_is_y_minus_1():
    # D ≥ n − 1 (generic data): H-score = Y − 1 whatever the data; the pinv cut-off must drop the
    # n − 1 … D rounding-noise eigenvalues and keep the n − 1 real ones.
    for seed, (n, width, classes) in enumerate([(40, 64, 4), (30, 29, 3), (100, 256, 5)]):
        case = gaussian_case(70 + seed, n=n, width=width, classes=classes, dtype=np.float32)
        assert math.isclose(hscore(case.features, case.labels), classes - 1, rel_tol=1e-9)
    assert pinv_rcond(1) == 1e-10 and pinv_rcond(2048) == 1e-10
    assert pinv_rcond(1 << 20) == (1 << 20) * feature_reference.EPSILON


def test_reference_empty_classes_and_d1():
    case = gaussian_case(80, n=200, width=1, classes=3, dtype=np.float64)
    scores = feature_scores(case.features, case.labels, target_classes=9)
    assert scores["target_classes"] == 9 and scores["feature_width"] == 1
    assert scores["logme"] == logme(case.features, case.labels)  # empty classes 3..8 left out
    # D = 1: H-score = between-class variance / total variance (both unbiased); the shrinkage
    # H-score divides the unbiased between-class variance by the biased total one.
    x = case.features[:, 0]
    between = sum(np.sum(case.labels == c) * (x[case.labels == c].mean() - x.mean()) ** 2
                  for c in range(3))
    total = np.sum((x - x.mean()) ** 2)
    assert math.isclose(scores["hscore"], between / total, rel_tol=1e-12)
    assert math.isclose(scores["hscore_shrinkage"], between / total * 200 / 199, rel_tol=1e-12)


def test_reference_rejects_bad_inputs():
    f = np.random.default_rng(90).normal(size=(5, 3))
    with pytest.raises(ValueError):
        feature_scores(f[0], np.zeros(5, dtype=np.int64))  # 1-D
    with pytest.raises(ValueError):
        feature_scores(f[:1], np.zeros(1, dtype=np.int64))  # n = 1
    with pytest.raises(ValueError):
        feature_scores(f, np.zeros(4, dtype=np.int64))  # length mismatch
    with pytest.raises(ValueError):
        feature_scores(f, np.array([0, 1, 2, 3, 4]), target_classes=3)  # label ≥ Y
    bad = f.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="row 2"):
        feature_scores(bad, np.zeros(5, dtype=np.int64))


def test_reference_cli_prints_same_json(tmp_path):
    case = gaussian_case(91, n=300, width=12, classes=4, dtype=np.float16)
    features, labels = write_case(case, tmp_path)
    result = subprocess.run(
        [sys.executable, str(Path(feature_reference.__file__)), str(features), str(labels),
         "--target-classes", "6"],
        capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(result.stdout) == feature_scores(case.features, case.labels, 6)


# --------------------------------------------------------------------------------------------
# Sufficient statistics (docs/transferability.md): merges, and the scores from them alone
# --------------------------------------------------------------------------------------------


@dataclass
class Moments:
    """n, μ, M2 = Σ(f−μ)(f−μ)ᵀ, V3 = Σ‖f−μ‖²(f−μ), M4 = Σ‖f−μ‖⁴, per-class counts and means."""

    n: int
    mean: np.ndarray
    m2: np.ndarray
    v3: np.ndarray
    m4: float
    class_counts: np.ndarray
    class_means: np.ndarray

    @classmethod
    def of(cls, f: np.ndarray, labels: np.ndarray, classes: int) -> "Moments":
        mean = f.mean(axis=0)
        u = f - mean
        norms = np.sum(u * u, axis=1)
        counts = np.bincount(labels, minlength=classes)
        means = np.zeros((classes, f.shape[1]))
        for c in np.flatnonzero(counts):
            means[c] = f[labels == c].mean(axis=0)
        return cls(len(f), mean, u.T @ u, norms @ u, float(norms @ norms), counts, means)

    def merged(self, other: "Moments") -> "Moments":
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        m2 = self.m2 + other.m2 + np.outer(delta, delta) * (self.n * other.n / n)
        v3 = np.zeros_like(self.v3)
        m4 = 0.0
        for part in (self, other):
            d = part.mean - mean  # each set's moments, shifted to the new mean
            dd = float(d @ d)
            trace = float(np.trace(part.m2))
            m4 += part.m4 + 4 * d @ part.m2 @ d + part.n * dd ** 2 + 4 * d @ part.v3 + 2 * dd * trace
            v3 += part.v3 + trace * d + 2 * part.m2 @ d + part.n * dd * d
        counts = self.class_counts + other.class_counts
        means = np.zeros_like(self.class_means)
        for c in np.flatnonzero(counts):
            means[c] = self.class_means[c] + (other.class_means[c] - self.class_means[c]) * (
                other.class_counts[c] / counts[c])
        return Moments(n, mean, m2, v3, float(m4), counts, means)


def scores_from_moments(st: Moments) -> dict:
    """The three scores from the sufficient statistics only (the formulas of the docs)."""
    n, width = st.n, st.mean.size
    present = np.flatnonzero(st.class_counts)
    shift = st.class_means[present] - st.mean
    cov_g = (shift.T * st.class_counts[present]) @ shift / (n - 1)
    rcond = pinv_rcond(width)
    h = float(np.trace(np.linalg.pinv(st.m2 / (n - 1), rcond=rcond) @ cov_g))

    s_emp = st.m2 / n
    trace = np.trace(s_emp)
    mu = trace / width
    if width == 1:
        shrinkage, cov_a = 0.0, s_emp
    else:
        delta_ = np.sum(s_emp ** 2)
        beta = (st.m4 / n - delta_) / (width * n)
        delta = (delta_ - 2 * mu * trace + width * mu ** 2) / width
        beta = min(beta, delta)
        shrinkage = 0.0 if beta == 0 else beta / delta
        cov_a = (1 - shrinkage) * s_emp + shrinkage * mu * np.eye(width)
    h_a = float(np.trace(np.linalg.pinv(cov_a, rcond=rcond) @ ((1 - shrinkage) * cov_g)))

    # LogME: G = M2 + nμμᵀ = AᵀA with A = [√n μᵀ; diag(√d) Wᵀ] (M2 = W diag(d) Wᵀ); the SVD of
    # the (D+1)×D matrix A gives G's spectrum without forming G (see "Accuracy" in the docs).
    d, w = np.linalg.eigh(st.m2)
    root = np.vstack([math.sqrt(n) * st.mean, np.sqrt(np.clip(d, 0, None))[:, None] * w.T])
    _, sigma, vh = np.linalg.svd(root, full_matrices=False)
    s, v = sigma ** 2, vh.T
    evidences = []
    for c in present:
        n_c = st.class_counts[c]
        t = v.T @ (n_c * st.class_means[c])  # fᵀy_c = n_c μ_c
        alpha = beta = lam = 1.0
        for _ in range(11):
            gamma = np.sum(s / (s + lam))
            m = v @ (t * beta / (alpha + beta * s))
            alpha_de = m @ m
            alpha = gamma / alpha_de
            # ‖y_c − f m‖² with f = (f − μ) + μ: Σ(y_i − μᵀm)² − 2 n_c (μ_c − μ)ᵀm + mᵀM2 m
            offset = st.mean @ m
            beta_de = (n_c * (1 - offset) ** 2 + (n - n_c) * offset ** 2
                       - 2 * n_c * (st.class_means[c] - st.mean) @ m + m @ st.m2 @ m)
            beta = (n - gamma) / beta_de
            new_lam = alpha / beta
            if abs(new_lam - lam) / lam < 0.01:
                break
            lam = new_lam
        evidence = (width / 2 * math.log(alpha) + n / 2 * math.log(beta)
                    - 0.5 * np.sum(np.log(alpha + beta * s)) - beta / 2 * beta_de
                    - alpha / 2 * alpha_de - n / 2 * math.log(2 * math.pi))
        evidences.append(evidence / n)
    return {"logme": float(np.mean(evidences)), "hscore": h, "hscore_shrinkage": h_a}


def _split_and_merge(f, labels, classes, pieces, rng) -> Moments:
    cuts = np.sort(rng.choice(np.arange(1, len(f)), size=pieces - 1, replace=False))
    parts = [Moments.of(a, b, classes) for a, b in zip(np.split(f, cuts), np.split(labels, cuts))]
    # Merge in a random tree order, not only left to right.
    while len(parts) > 1:
        i = int(rng.integers(0, len(parts) - 1))
        parts[i:i + 2] = [parts[i].merged(parts[i + 1])]
    return parts[0]


def test_merge_identities():
    rng = np.random.default_rng(100)
    for offset in (0.0, 50.0):
        case = gaussian_case(101, n=257, width=7, classes=4, dtype=np.float64, offset=offset)
        direct = Moments.of(case.features, case.labels, 4)
        merged = _split_and_merge(case.features, case.labels, 4, pieces=9, rng=rng)
        assert merged.n == direct.n
        np.testing.assert_allclose(merged.mean, direct.mean, rtol=1e-13)
        np.testing.assert_allclose(merged.m2, direct.m2, rtol=1e-11, atol=1e-11 * np.abs(direct.m2).max())
        np.testing.assert_allclose(merged.v3, direct.v3, rtol=1e-9, atol=1e-10 * np.abs(direct.v3).max())
        assert math.isclose(merged.m4, direct.m4, rel_tol=1e-11)
        np.testing.assert_array_equal(merged.class_counts, direct.class_counts)
        np.testing.assert_allclose(merged.class_means, direct.class_means, rtol=1e-13)


@pytest.mark.parametrize("name", ["ordinary_n500_D16_Y5", "d_greater_than_n_n40_D64_Y4", "d_equals_1",
                                  "class_with_one_sample", "large_offset_1e4", "large_offset_1e5",
                                  "clustered"])
def test_scores_from_merged_statistics(name):
    """The docs' formulas, fed only merged sufficient statistics, give the reference's scores."""
    case = CASES[name]()
    f = case.features.astype(np.float64)
    classes = int(case.labels.max()) + 1
    merged = _split_and_merge(f, case.labels, classes, pieces=7, rng=np.random.default_rng(110))
    from_stats = scores_from_moments(merged)
    expected = feature_scores(case.features, case.labels)
    for key in SCORE_KEYS:
        assert math.isclose(from_stats[key], expected[key], rel_tol=1e-9), (
            key, from_stats[key], expected[key], relative_difference(from_stats[key], expected[key]))
