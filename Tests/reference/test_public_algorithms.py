"""The float64 reference's GBC, TransRate and SFDA (feature_reference.py) against NumPy rewrites of
the public implementations (bench/public_feature_metrics.py: stable_transfer get_gbc_score,
tllib transrate, TencentARC/SFDA SFDA_Score), and against what the public projects expect of
their metrics.  No binary needed.

(a) Where the conventions coincide — every class 0 … K−1 present, float64 input — the two agree
    to 1e-10 relative: ordinary data, D > n, Y = 2, a class with one sample, float16 input
    upcast, well separated classes, a common offset of 1e4 (SFDA only to 1e-8 there: the
    published logits xᵀB⁻¹μ_c − ½μ_cᵀB⁻¹μ_c cancel two numbers of size ‖offset‖²/σ²; fed the
    same rows centred, the published algorithm agrees to 1e-12 again, so the loss is its own).
    SFDA's coefficients means·V·Vᵀ from eigh(Sb, B) equal means·B⁻¹.
(b) The expectations: stable_transfer's GbcTest / HscoreTest / LogmeTest cases (edge cases of
    overlapping and separated classes, one-hot vs random features, with their PCA variants),
    GBC = −K(K − 1) exactly for identical class distributions, TransRate = 0 for identical
    class distributions and ≥ 0 for balanced classes (concavity of log det), SFDA in (0, 1].
(c) Where the conventions differ — a label value with no row, one class, D = 1, float16/32
    input — what the published code does and what the reference does instead.
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import feature_reference
from feature_reference import Unscored, gbc, hscore, logme, sfda, transrate
from test_feature_cross_check import gaussian_case, singleton_class_case  # the cross-check's cases

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import public_feature_metrics as public  # noqa: E402  (the published algorithms, rewritten)

GAUSSIAN_TYPES = ("diagonal", "spherical")


def rel(actual: float, expected: float) -> float:
    return abs(actual - expected) / abs(expected) if expected else abs(actual)


def public_quietly(function, *args, **kwargs):
    """Calls a published algorithm with NumPy's warnings silenced (empty slices, 0/0)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def pca(features: np.ndarray, n_components) -> np.ndarray:
    """stable_transfer features_targets_utils.pca_reduction: scikit-learn's PCA(n_components,
    svd_solver='full').fit_transform, cast to float32.  An int keeps that many components; a
    float in (0, 1) the fewest whose explained variance ratio exceeds it."""
    x = np.asarray(features, dtype=np.float64)
    x = x - x.mean(axis=0)
    _, sigma, vh = np.linalg.svd(x, full_matrices=False)
    if isinstance(n_components, float) and 0 < n_components < 1:
        ratio = np.cumsum(sigma ** 2) / np.sum(sigma ** 2)
        n_components = int(np.searchsorted(ratio, n_components, side="right")) + 1
    return (x @ vh[:n_components].T).astype(np.float32)


# --------------------------------------------------------------------------------------------
# (a) The reference equals the published algorithm where the conventions coincide
# --------------------------------------------------------------------------------------------

SAME_CONVENTION_CASES = {
    "ordinary_n500_D16_Y5": lambda: gaussian_case(1, n=500, width=16, classes=5, separation=0.5,
                                                  dtype=np.float64),
    "d_greater_than_n_n40_D64_Y4": lambda: gaussian_case(2, n=40, width=64, classes=4, dtype=np.float64),
    "two_classes": lambda: gaussian_case(4, n=400, width=10, classes=2, separation=0.7, dtype=np.float64),
    "class_with_one_sample": lambda: singleton_class_case(5),
    "float16_upcast": lambda: gaussian_case(7, n=1000, width=32, classes=6, dtype=np.float16),
    "clustered": lambda: gaussian_case(9, n=1000, width=32, classes=10, separation=4.0, dtype=np.float64),
    "d_near_n_n120_D100_Y6": lambda: gaussian_case(12, n=120, width=100, classes=6, separation=0.3,
                                                   dtype=np.float32),
}


@pytest.mark.parametrize("name", list(SAME_CONVENTION_CASES))
def test_reference_equals_public_algorithms(name):
    case = SAME_CONVENTION_CASES[name]()
    labels = case.labels
    assert set(np.unique(labels)) == set(range(labels.max() + 1))  # every class present
    upcast = case.features.astype(np.float64)  # what the reference computes on
    for kind in GAUSSIAN_TYPES:
        ours, theirs = gbc(case.features, labels, kind), public.get_gbc_score(upcast, labels, kind)
        assert rel(ours, theirs) <= 1e-10, (kind, ours, theirs)
    ours, theirs = transrate(case.features, labels), public.transrate(upcast, labels)
    assert rel(ours, theirs) <= 1e-10, ("transrate", ours, theirs)
    (ours, s_ours), (theirs, s_theirs) = sfda(case.features, labels), public.sfda_score_and_shrinkage(upcast, labels)
    assert rel(ours, theirs) <= 1e-10, ("sfda", ours, theirs)
    assert rel(s_ours, s_theirs) <= 1e-10, ("sfda shrinkage", s_ours, s_theirs)
    assert 0 < ours <= 1 and 1e-10 <= s_ours <= 1


def test_large_common_offset():
    """Features + 1e4 (float64).  GBC and TransRate: 1e-10 as everywhere.  SFDA: the published
    logits lose ~ε‖offset‖²/σ² to cancellation (measured 7.2e-9 relative here, 1.1e-9 and
    3.5e-9 on the cross-check's offset cases), so 5e-8; the published algorithm fed the centred
    rows agrees with the reference to 1e-12, and the reference's value does not move when the
    offset is removed (it is translation invariant)."""
    base = gaussian_case(7, n=500, width=16, classes=5, dtype=np.float64, separation=1.0)
    shifted = base.features + 1e4
    labels = base.labels
    for kind in GAUSSIAN_TYPES:
        assert rel(gbc(shifted, labels, kind), public.get_gbc_score(shifted, labels, kind)) <= 1e-10
        assert rel(gbc(shifted, labels, kind), gbc(base.features, labels, kind)) <= 1e-9
    assert rel(transrate(shifted, labels), public.transrate(shifted, labels)) <= 1e-10
    assert rel(transrate(shifted, labels), transrate(base.features, labels)) <= 1e-9

    ours, _ = sfda(shifted, labels)
    assert rel(public.sfda_score(shifted, labels), ours) <= 5e-8
    assert rel(public.sfda_score(shifted - shifted.mean(axis=0), labels), ours) <= 1e-12
    assert rel(sfda(base.features, labels)[0], ours) <= 1e-12


def test_sfda_coefficients_are_means_times_inverse_within_scatter():
    """coef = means·V·Vᵀ with V the B-orthonormal eigenvectors of eigh(Sb, B): V Vᵀ = B⁻¹, so the
    coefficients are means·B⁻¹ whatever Sb (and St) is — checked on the published fit, and with
    Sb replaced by an arbitrary symmetric matrix.  Both routes err by about cond(B)·ε (relative,
    largest entry): measured ≤ 4e-8 at cond(B) = 1.2e9 (D > n, s = 3.9e-9), ≤ 2e-15 at
    cond(B) ≈ 2; the bound is 100·cond(B)·ε."""
    for seed, (n, width, classes) in enumerate([(500, 16, 5), (40, 64, 4), (300, 3, 2)]):
        case = gaussian_case(200 + seed, n=n, width=width, classes=classes, dtype=np.float64)
        fit = public.SFDA().fit(case.features, case.labels)
        sw = fit.covariance_
        shrunk = (1 - fit.shrinkage) * sw + fit.shrinkage * np.trace(sw) / width * np.eye(width)
        bound = 100 * np.linalg.cond(shrunk) * feature_reference.EPSILON
        inverse = np.linalg.inv(shrunk)
        direct = fit.means_ @ inverse
        assert np.abs(fit.coef_ - direct).max() <= bound * np.abs(direct).max()
        v = fit.scalings_
        assert np.abs(v.T @ shrunk @ v - np.eye(width)).max() <= bound
        assert np.abs(v @ v.T - inverse).max() <= bound * np.abs(inverse).max()
        arbitrary = np.random.default_rng(seed).normal(size=(width, width))
        _, v_any = public.generalized_eigh(arbitrary + arbitrary.T, shrunk)
        assert np.abs(v_any @ v_any.T - inverse).max() <= bound * np.abs(inverse).max()


def test_generalized_eigh_solves_the_pencil():
    rng = np.random.default_rng(210)
    a = rng.normal(size=(7, 7))
    a = a + a.T
    b = rng.normal(size=(7, 7))
    b = b @ b.T + 0.1 * np.eye(7)
    w, v = public.generalized_eigh(a, b)
    assert np.all(np.diff(w) >= 0)
    assert np.abs(a @ v - b @ v * w).max() <= 1e-11 * np.abs(a).max() * np.abs(v).max()
    assert np.allclose(v.T @ b @ v, np.eye(7), atol=1e-12)
    with pytest.raises(ValueError):
        public.generalized_eigh(np.full((2, 2), np.nan), np.eye(2))
    with pytest.raises(np.linalg.LinAlgError):
        public.generalized_eigh(np.eye(2), -np.eye(2))


def test_gbc_by_hand():
    """Two classes, D = 3, by the formula: the spherical form takes the log of the scalar mean
    variance once (not D times) and still sums the squared mean differences over D."""
    rows = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 1.0], [1.0, 3.0, 0.0], [1.0, 1.0, 0.0]])
    labels = np.array([0, 0, 1, 1])
    mu = [np.array([1.0, 0.0, 0.5]), np.array([1.0, 2.0, 0.0])]
    var = [np.array([1.0, 1e-4, 0.25]), np.array([1e-4, 1.0, 1e-4])]  # 0 floored to 1e-4

    def bd(m1, m2, s1, s2):
        avg = (s1 + s2) / 2
        return (np.sum((m1 - m2) ** 2 / avg) / 8
                + 0.5 * (np.sum(np.log(avg)) - 0.5 * np.sum(np.log(s1)) - 0.5 * np.sum(np.log(s2))))

    diagonal = -2 * math.exp(-bd(mu[0], mu[1], var[0], var[1]))
    s0, s1 = var[0].mean(), var[1].mean()
    avg = (s0 + s1) / 2
    spherical_bd = np.sum((mu[0] - mu[1]) ** 2) / avg / 8 + 0.5 * (math.log(avg) - 0.5 * math.log(s0)
                                                                  - 0.5 * math.log(s1))
    spherical = -2 * math.exp(-spherical_bd)
    assert rel(gbc(rows, labels, "diagonal"), diagonal) <= 1e-14
    assert rel(gbc(rows, labels, "spherical"), spherical) <= 1e-14
    assert rel(public.get_gbc_score(rows, labels, "spherical"), spherical) <= 1e-14


def test_transrate_d1_by_hand():
    """D = 1: R(z) = ½ log(1 + Σz²/(n_z·eps)) with z centred by the global mean."""
    case = gaussian_case(220, n=90, width=1, classes=3, dtype=np.float64)
    x = case.features[:, 0] - case.features[:, 0].mean()
    eps = 1e-4
    whole = 0.5 * math.log1p(np.sum(x ** 2) / (x.size * eps))
    parts = [0.5 * math.log1p(np.sum(x[case.labels == c] ** 2) / (np.sum(case.labels == c) * eps))
             for c in range(3)]
    expected = whole - sum(parts) / 3
    assert rel(transrate(case.features, case.labels), expected) <= 1e-12
    assert rel(public.transrate(case.features, case.labels), expected) <= 1e-12


def test_public_gbc_in_the_input_dtype():
    """TensorFlow computes GBC in the features' dtype; the float32 value differs from the float64
    one (what leepstream reports) beyond rounding of the result, by about float32's epsilon."""
    case = gaussian_case(230, n=800, width=64, classes=6, dtype=np.float32, separation=0.3)
    for kind in GAUSSIAN_TYPES:
        ours = gbc(case.features, case.labels, kind)
        in_float64 = public.get_gbc_score(case.features, case.labels, kind, dtype=np.float64)
        in_float32 = public.get_gbc_score(case.features, case.labels, kind)
        assert rel(in_float64, ours) <= 1e-12
        assert 1e-10 < rel(in_float32, ours) < 1e-4, (kind, in_float32, ours)


# --------------------------------------------------------------------------------------------
# (b) What the public projects expect of their metrics
# --------------------------------------------------------------------------------------------

# stable_transfer transferability_metrics_test.py GbcTest: (target_classes, features_dim,
# n_components of the PCA first (None: none), gaussian_type).
GBC_TEST_CASES = [(5, 16, None, "spherical"), (5, 32, 16, "spherical"), (5, 32, 16, "diagonal"),
                  (10, 16, 0.8, "diagonal")]


@pytest.mark.parametrize("classes,width,components,kind", GBC_TEST_CASES)
def test_gbc_minimum_edge_case(classes, width, components, kind):
    """Completely overlapping classes (500 points each, all N(0, 1e-4²)): every Bhattacharyya
    distance is nearly 0 and GBC is just above its lower bound −K(K − 1), within 20 %."""
    rng = np.random.default_rng(240 + classes + width)
    features = rng.normal(0, 1e-4, size=(500 * classes, width)).astype(np.float32)
    labels = np.repeat(np.arange(classes), 500)
    if components:
        features = pca(features, components)
    lower = -classes * (classes - 1)
    for value in (gbc(features, labels, kind), public.get_gbc_score(features, labels, kind)):
        assert lower < value and (value - lower) / -lower < 0.2


@pytest.mark.parametrize("classes,width,components,kind", GBC_TEST_CASES)
def test_gbc_maximum_edge_case(classes, width, components, kind):
    """Separable classes (means c², standard deviation 0.01): GBC ≈ 0."""
    rng = np.random.default_rng(250 + classes + width)
    features = np.concatenate([rng.normal(c ** 2, 0.01, size=(500, width)) for c in range(classes)])
    features = features.astype(np.float32)
    labels = np.repeat(np.arange(classes), 500)
    if components:
        features = pca(features, components)
    assert abs(gbc(features, labels, kind)) < 1e-7
    assert abs(public.get_gbc_score(features, labels, kind)) < 1e-7


@pytest.mark.parametrize("classes,width,components,kind", GBC_TEST_CASES)
def test_gbc_similar_vs_random_features(classes, width, components, kind):
    """One-hot-of-label features score higher than N(0, 1) features (3000 points)."""
    rng = np.random.default_rng(260 + classes + width)
    labels = rng.integers(0, classes, size=3000)
    perfect = np.eye(width, dtype=np.float32)[labels]
    random = rng.normal(size=(3000, width)).astype(np.float32)
    if components:
        perfect, random = pca(perfect, components), pca(random, components)
    assert gbc(perfect, labels, kind) > gbc(random, labels, kind)


@pytest.mark.parametrize("kind", GAUSSIAN_TYPES)
def test_gbc_identical_class_distributions_is_exactly_the_lower_bound(kind):
    """Each class holds the very same rows (or every row is the same): equal means and variances,
    every distance exactly 0 — GBC = −K(K − 1) exactly, in the reference and the published code."""
    rng = np.random.default_rng(270)
    base = rng.normal(size=(40, 8))
    for classes in (2, 5):
        features = np.tile(base, (classes, 1))
        labels = np.repeat(np.arange(classes), 40)
        assert gbc(features, labels, kind) == -classes * (classes - 1)
        assert public.get_gbc_score(features, labels, kind) == -classes * (classes - 1)
        same_row = np.tile(base[:1], (40 * classes, 1))
        assert gbc(same_row, labels, kind) == -classes * (classes - 1)


def test_transrate_identical_class_distributions_is_zero():
    """Identical class distributions: every class block has the same Gram matrix about the global
    mean, and R(f) = R(f_c) for each (the n_Z's cancel), so TransRate = 0."""
    rng = np.random.default_rng(280)
    base = rng.normal(size=(30, 12))
    for classes in (2, 4):
        features = np.tile(base, (classes, 1))
        labels = np.repeat(np.arange(classes), 30)
        whole = feature_reference.coding_rate(features - features.mean(axis=0))
        assert abs(transrate(features, labels)) <= 1e-12 * whole
        assert abs(public.transrate(features, labels)) <= 1e-12 * whole


@pytest.mark.parametrize("n,width,classes,separation", [(600, 16, 4, 0.0), (600, 16, 4, 1.0),
                                                        (60, 100, 3, 0.5), (1000, 8, 10, 0.2)])
def test_transrate_is_non_negative_for_balanced_classes(n, width, classes, separation):
    """log det(I + S/ε) is concave in S, and with n_c = n/K the whole-data Gram matrix is the plain
    mean of the class ones, ZᵀZ/n = (1/K) Σ_c Z_cᵀZ_c/n_c — so R(f) ≥ (1/K) Σ_c R(f_c) (Jensen):
    TransRate ≥ 0 for balanced classes, whatever the features (random labels included).  It is at
    most R(f), since every R(f_c) ≥ 0."""
    rng = np.random.default_rng(290 + n + width)
    labels = rng.permutation(np.repeat(np.arange(classes), n // classes))
    centres = separation * rng.normal(size=(classes, width))
    features = centres[labels] + rng.normal(size=(n, width))
    value = transrate(features, labels)
    whole = feature_reference.coding_rate(features - features.mean(axis=0))
    assert -1e-12 * whole <= value <= whole


def test_transrate_can_be_negative_for_unbalanced_classes():
    """Without balance the bound fails: a large tight class and a small spread-out one."""
    rng = np.random.default_rng(300)
    features = np.concatenate([rng.normal(0, 1e-3, size=(990, 16)), rng.normal(0, 1e-2, size=(10, 16))])
    labels = np.repeat([0, 1], [990, 10])
    assert transrate(features, labels) < 0
    assert rel(public.transrate(features, labels), transrate(features, labels)) <= 1e-10


def test_transrate_perfect_features_beat_random():
    rng = np.random.default_rng(310)
    labels = rng.integers(0, 5, size=3000)
    perfect = np.eye(16)[labels]
    random = rng.normal(size=(3000, 16))
    assert transrate(perfect, labels) > transrate(random, labels) > 0


# stable_transfer HscoreTest: (target_classes, features_dim, n_components of the PCA first).
@pytest.mark.parametrize("classes,width,components", [(5, 16, None), (5, 32, 16), (10, 16, 0.8)])
def test_hscore_one_hot_below_d_and_random_near_zero(classes, width, components):
    rng = np.random.default_rng(320 + classes + width)
    labels = rng.integers(0, classes, size=3000)
    perfect = np.eye(width, dtype=np.float32)[labels]
    random = rng.normal(size=(3000, width)).astype(np.float32)
    if components:
        perfect, random = pca(perfect, components), pca(random, components)
    assert hscore(perfect, labels) < width
    assert abs(hscore(random, labels)) < 0.1


# stable_transfer LogmeTest: (target_classes, features_dim, points).
@pytest.mark.parametrize("classes,width,points", [(5, 16, 3000), (15, 32, 3000), (15, 64, 60)])
def test_logme_good_features_beat_random(classes, width, points):
    rng = np.random.default_rng(330 + classes + width)
    labels = np.unique(rng.integers(0, classes, size=points), return_inverse=True)[1]  # shift_target_labels
    random = rng.normal(size=(points, width)).astype(np.float32)
    good = np.eye(width, dtype=np.float32)[labels] + random * 1e-3
    assert logme(good, labels) > logme(random, labels)


@pytest.mark.parametrize("n,width,classes,separation", [(500, 16, 5, 0.0), (500, 16, 5, 0.5),
                                                        (2000, 32, 10, 2.0), (300, 4, 2, 0.1)])
def test_sfda_is_a_probability_and_grows_with_separation(n, width, classes, separation):
    case = gaussian_case(340 + n, n=n, width=width, classes=classes, separation=separation,
                         dtype=np.float64)
    value, shrinkage = sfda(case.features, case.labels)
    assert 0 < value <= 1 and 1e-10 <= shrinkage <= 1
    if separation >= 2:
        assert value > 0.95
    if separation == 0:
        assert value < 2 / classes  # labels independent of the features: near chance


def test_sfda_saturates_when_d_is_near_n():
    """TencentARC/SFDA issue 5 ("all sfda_score == 1.0", 500 samples of 2048-d features): with
    D ≥ n − K the within-class scatter is singular, B = (1 − s)Sw + s·tr(Sw)/D·I is tiny in its
    null space (s is small, here at or near its floor 1e-10), the fitted discriminant separates
    every training row — random labels included — and the mean true-class probability is 1.
    The value is defined (B is far from numerically singular) and reported as such."""
    rng = np.random.default_rng(350)
    features = rng.normal(size=(60, 200)) * 3.0
    labels = rng.integers(0, 4, size=60)
    value, shrinkage = sfda(features, labels)
    assert value > 1 - 1e-6 and shrinkage < 1e-8
    assert rel(public.sfda_score(features, labels), value) <= 1e-10
    # The same rows with D ≪ n: far from saturated.
    value_small, _ = sfda(features[:, :4], labels)
    assert value_small < 0.6


# --------------------------------------------------------------------------------------------
# (c) Where the conventions differ
# --------------------------------------------------------------------------------------------


def _gap_case():
    """Labels {0, 1, 3, 4}: the value 2 has no row."""
    case = gaussian_case(400, n=400, width=8, classes=5, separation=0.8, dtype=np.float64)
    labels = case.labels.copy()
    labels[labels == 2] = 4
    compact = np.searchsorted(np.array([0, 1, 3, 4]), labels)  # the same partition, labels 0 … 3
    return case.features, labels, compact


def test_absent_class_transrate():
    """tllib loops over 0 … max label: the empty block divides by zero (ZeroDivisionError with
    the default eps; a NumPy eps makes it contribute R = 0 while still counting in C = 5).
    leepstream sums over the 4 present classes and divides by 4: tllib's value on the compact
    labels."""
    features, labels, compact = _gap_case()
    with pytest.raises(ZeroDivisionError):
        public.transrate(features, labels)
    centred = features - features.mean(axis=0)
    whole = public.coding_rate(centred)
    parts = sum(public.coding_rate(centred[labels == c]) for c in (0, 1, 3, 4))
    numpy_eps = public_quietly(public.transrate, features, labels, eps=np.float64(1e-4))
    assert rel(numpy_eps, whole - parts / 5) <= 1e-12
    ours = transrate(features, labels)
    assert rel(ours, whole - parts / 4) <= 1e-10
    assert rel(ours, public.transrate(features, compact)) <= 1e-10
    assert ours == transrate(features, compact)


def test_absent_class_gbc_agrees():
    """get_gbc_score iterates over tf.unique(labels): absent values never appear, so the
    conventions coincide."""
    features, labels, _ = _gap_case()
    for kind in GAUSSIAN_TYPES:
        assert rel(gbc(features, labels, kind), public.get_gbc_score(features, labels, kind)) <= 1e-10


def test_absent_class_sfda():
    """The published fit compares np.unique's inverse indices with the raw label values: with a
    gap one class's covariance is the mean of an empty slice (NaN) and SciPy's eigh refuses it
    (ValueError); labels that do not start at 0 fail the same way.  The reference scores the
    present classes: the published value on the compact labels."""
    features, labels, compact = _gap_case()
    with pytest.raises(ValueError):
        public_quietly(public.sfda_score, features, labels)
    with pytest.raises(ValueError):
        public_quietly(public.sfda_score, features, compact + 1)
    ours, shrinkage = sfda(features, labels)
    theirs, their_shrinkage = public.sfda_score_and_shrinkage(features, compact)
    assert rel(ours, theirs) <= 1e-10 and rel(shrinkage, their_shrinkage) <= 1e-10
    assert sfda(features, compact + 7) == (ours, shrinkage)


def test_one_class():
    """One present class: stable_transfer sums an empty list, GBC = −0.0 (the best score);
    SFDA's m̄ divides by K − 1 = 0 and the second fit sees NaN (ValueError); TransRate is exactly
    0 in both.  The reference: GBC and SFDA unscored (sfda_shrinkage null with sfda)."""
    rng = np.random.default_rng(410)
    features = rng.normal(size=(50, 4))
    labels = np.full(50, 3)
    assert public.get_gbc_score(features, labels, "diagonal") == 0.0
    with pytest.raises(ValueError):
        public_quietly(public.sfda_score, features, np.zeros(50, dtype=np.int64))
    for kind in GAUSSIAN_TYPES:
        with pytest.raises(Unscored):
            gbc(features, labels, kind)
    with pytest.raises(Unscored):
        sfda(features, labels)
    assert transrate(features, labels) == 0.0
    assert public.transrate(features, np.zeros(50, dtype=np.int64)) == 0.0
    scores = feature_reference.feature_scores(features, labels)
    assert scores["gbc_diagonal"] is None and scores["gbc_spherical"] is None and scores["sfda"] is None
    assert scores["sfda_shrinkage"] is None
    assert set(scores["unscored"]) == {"gbc_diagonal", "gbc_spherical", "sfda"}


def test_one_feature_column():
    """D = 1: the published _cov reads shape[0] of np.cov's 0-d result (IndexError); the
    reference treats the scatters as 1×1.  GBC's two types coincide for D = 1."""
    case = gaussian_case(420, n=300, width=1, classes=3, dtype=np.float64)
    with pytest.raises(IndexError):
        public.sfda_score(case.features, case.labels)
    value, _ = sfda(case.features, case.labels)
    assert 0 < value <= 1
    assert rel(gbc(case.features, case.labels, "diagonal"), gbc(case.features, case.labels, "spherical")) <= 1e-15


def test_sfda_float32_input_mixes_in_float32():
    """The published ConfMix writes the mixed rows back into X: float32 input rounds them to
    float32 (and overwrites the caller's array — the rewrite mixes a copy).  The reference mixes
    in float64: it equals the published algorithm on the upcast rows, not on the float32 ones."""
    case = gaussian_case(430, n=600, width=24, classes=4, dtype=np.float32, separation=0.5)
    before = case.features.copy()
    as_float32 = public.sfda_score(case.features, case.labels)
    np.testing.assert_array_equal(case.features, before)  # the rewrite left the input alone
    upcast = public.sfda_score(case.features.astype(np.float64), case.labels)
    ours, _ = sfda(case.features, case.labels)
    np.testing.assert_array_equal(case.features, before)
    assert rel(upcast, ours) <= 1e-10
    assert 0 < rel(as_float32, ours) < 1e-5


def test_feature_scores_keys_and_unscored():
    """The reference's JSON has the binary's keys; "unscored" appears only when a value is null."""
    case = gaussian_case(440, n=300, width=12, classes=4, dtype=np.float32)
    scores = feature_reference.feature_scores(case.features, case.labels)
    assert set(scores) == {"logme", "hscore", "hscore_shrinkage", "ledoit_wolf_shrinkage",
                           "gbc_diagonal", "gbc_spherical", "transrate", "sfda", "sfda_shrinkage",
                           "n", "target_classes", "feature_width"}
    assert all(isinstance(scores[key], float) for key in ("gbc_diagonal", "gbc_spherical", "transrate",
                                                          "sfda", "sfda_shrinkage"))
    # Features = one-hot of the labels: LogME fits every class exactly (not finite); every class's
    # rows are identical, so SFDA has no within-class scatter; the rest are defined.
    labels = np.random.default_rng(441).integers(0, 5, size=3000)
    one_hot = feature_reference.feature_scores(np.eye(5)[labels], labels)
    assert set(one_hot["unscored"]) == {"logme", "sfda"}
    assert all(one_hot[key] is None for key in ("logme", "sfda", "sfda_shrinkage"))
    assert one_hot["gbc_diagonal"] == 0.0 and one_hot["transrate"] > 0
    assert math.isclose(one_hot["hscore"], 4.0, rel_tol=1e-12)


def test_transrate_in_the_input_dtype():
    """tllib keeps the input dtype: float32 features are centred and multiplied (ZᵀZ) in float32
    (3.9e-7 relative off the float64 value here); float16 features overflow in ZᵀZ (sums of n
    products past 65504) and slogdet returns NaN.  leepstream upcasts first."""
    case = gaussian_case(430, n=600, width=24, classes=4, dtype=np.float32, separation=0.5)
    ours = transrate(case.features, case.labels)
    assert 1e-9 < rel(public.transrate(case.features, case.labels), ours) < 1e-5
    half = gaussian_case(7, n=1000, width=32, classes=6, dtype=np.float16)
    assert math.isnan(public_quietly(public.transrate, half.features, half.labels))
    assert math.isfinite(transrate(half.features, half.labels))
    assert rel(transrate(half.features, half.labels),
               public.transrate(half.features.astype(np.float64), half.labels)) <= 1e-10


# --------------------------------------------------------------------------------------------
# The formulas of docs/transferability.md, section 8: the three metrics from merged sufficient
# statistics only (per class n_c, μ_c, M2_c or its diagonal; SFDA's three passes)
# --------------------------------------------------------------------------------------------


def _moments(x, index, classes, full=True):
    """Per class: counts, means, M2 (K×D×D, or its K×D diagonal)."""
    counts = np.bincount(index, minlength=classes)
    means = np.zeros((classes, x.shape[1]))
    m2 = np.zeros((classes, x.shape[1], x.shape[1]) if full else (classes, x.shape[1]))
    for c in np.flatnonzero(counts):
        u = x[index == c] - x[index == c].mean(axis=0)
        means[c] = x[index == c].mean(axis=0)
        m2[c] = u.T @ u if full else np.sum(u * u, axis=0)
    return counts, means, m2


def _merge(a, b, full=True):
    """Chan et al. per class: n = n_a + n_b, μ = μ_a + δ n_b/n, M2 = M2_a + M2_b + δδᵀ n_a n_b/n."""
    (na, ma, sa), (nb, mb, sb) = a, b
    n = na + nb
    safe = np.maximum(n, 1)[:, None]
    delta = mb - ma
    means = ma + delta * (nb[:, None] / safe)
    weight = na * nb / np.maximum(n, 1)
    cross = np.einsum("c,ci,cj->cij", weight, delta, delta) if full else weight[:, None] * delta ** 2
    return n, means, sa + sb + cross


def _merged(x, index, classes, pieces, rng, full=True):
    cuts = np.sort(rng.choice(np.arange(1, len(x)), size=pieces - 1, replace=False))
    parts = [_moments(a, b, classes, full) for a, b in zip(np.split(x, cuts), np.split(index, cuts))]
    while len(parts) > 1:
        i = int(rng.integers(0, len(parts) - 1))
        parts[i:i + 2] = [_merge(parts[i], parts[i + 1], full)]
    return parts[0]


def _gbc_from(counts, means, m2_diagonal, kind):
    sigma = np.maximum(m2_diagonal / counts[:, None], 1e-4)
    if kind == "spherical":
        sigma = sigma.mean(axis=1, keepdims=True)  # one value per class; log terms not × D
    total = 0.0
    for i in range(counts.size):
        for j in range(counts.size):
            if i != j:
                avg = (sigma[i] + sigma[j]) / 2
                bd = (np.sum((means[i] - means[j]) ** 2 / avg) / 8
                      + 0.5 * (np.sum(np.log(avg)) - 0.5 * np.sum(np.log(sigma[i])) - 0.5 * np.sum(np.log(sigma[j]))))
                total += math.exp(-bd)
    return -total


def _transrate_from(counts, means, m2, eps=1e-4):
    n, width = counts.sum(), means.shape[1]
    mu = counts @ means / n
    d = means - mu
    whole = m2.sum(axis=0) + np.einsum("c,ci,cj->ij", counts, d, d)  # global M2 from the classes

    def rate(gram, rows):
        return 0.5 * np.linalg.slogdet(np.eye(width) + gram / (rows * eps))[1]

    blocks = [rate(m2[c] + counts[c] * np.outer(d[c], d[c]), counts[c]) for c in range(counts.size)]
    return rate(whole, n) - sum(blocks) / counts.size


def _sfda_fit_from(counts, means, within, shrinkage):
    """B⁻¹(μ_c − μ), the constants of the centred logits, and μ, from n_c, μ_c, W = Σ_c M2_c."""
    n, width = counts.sum(), means.shape[1]
    sw = within / n
    b = (1 - shrinkage) * sw + shrinkage * np.trace(sw) / width * np.eye(width)
    mu = counts @ means / n
    d = means - mu
    coef = np.linalg.solve(b, d.T).T
    return coef, -0.5 * np.sum(d * coef, axis=1) + np.log(counts / n), mu


def _sfda_probabilities_from(x, fit):
    coef, constant, mu = fit
    logits = (x - mu) @ coef.T + constant
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def _sfda_three_passes(f, index, classes, pieces, rng):
    """Pass 1: n_c, μ_c, W; pass 2: the same of the mixed rows (each chunk mixes its own rows
    with fit 1); pass 3: Σ_i P2(y_i | x̃_i).  Only K×D + D×D numbers cross between chunks."""
    cuts = np.sort(rng.choice(np.arange(1, len(f)), size=pieces - 1, replace=False))
    chunks = list(zip(np.split(f, cuts), np.split(index, cuts)))
    counts, means, m2 = _merged(f, index, classes, pieces, rng)
    within = m2.sum(axis=0)  # SFDA needs only the pooled within-class scatter
    sw = within / counts.sum()
    x = sw.sum(axis=1)
    for _ in range(3):
        y = sw @ x / np.linalg.norm(sw @ x)
        x = sw @ y / np.linalg.norm(sw @ y)
    shrinkage = max(math.exp(-5 * float(x @ sw @ y)), 1e-10)
    first = _sfda_fit_from(counts, means, within, shrinkage)
    others = (means.sum(axis=0) - means) / (classes - 1)

    def mixed(rows, labels):
        p = _sfda_probabilities_from(rows, first)
        soft = np.exp(p) / np.exp(p).sum(axis=1, keepdims=True)
        own = soft[np.arange(len(rows)), labels][:, None]
        return own * rows + (1 - own) * others[labels]

    parts = [_moments(mixed(rows, labels), labels, classes) for rows, labels in chunks]
    while len(parts) > 1:
        parts[:2] = [_merge(parts[0], parts[1])]
    counts2, means2, m2_mixed = parts[0]
    second = _sfda_fit_from(counts2, means2, m2_mixed.sum(axis=0), shrinkage)
    total = sum(np.sum(_sfda_probabilities_from(mixed(rows, labels), second)[np.arange(len(rows)), labels])
                for rows, labels in chunks)
    return total / counts.sum(), shrinkage


@pytest.mark.parametrize("name", ["ordinary_n500_D16_Y5", "d_greater_than_n_n40_D64_Y4", "two_classes",
                                  "class_with_one_sample", "clustered", "offset_1e4_float32"])
def test_metrics_from_merged_statistics(name):
    cases = dict(SAME_CONVENTION_CASES)
    cases["offset_1e4_float32"] = lambda: gaussian_case(7, n=500, width=16, classes=5, dtype=np.float32,
                                                        separation=1.0, offset=1e4)
    case = cases[name]()
    f = case.features.astype(np.float64)
    classes_present, index = np.unique(case.labels, return_inverse=True)
    classes = classes_present.size
    rng = np.random.default_rng(600)
    counts, means, diagonal = _merged(f, index, classes, 7, rng, full=False)
    for kind in GAUSSIAN_TYPES:
        assert rel(_gbc_from(counts, means, diagonal, kind), gbc(case.features, case.labels, kind)) <= 1e-9
    counts, means, m2 = _merged(f, index, classes, 7, rng)
    assert rel(_transrate_from(counts, means, m2), transrate(case.features, case.labels)) <= 1e-9
    score, shrinkage = _sfda_three_passes(f, index, classes, 5, rng)
    ours, our_shrinkage = sfda(case.features, case.labels)
    assert rel(score, ours) <= 1e-9 and rel(shrinkage, our_shrinkage) <= 1e-9
