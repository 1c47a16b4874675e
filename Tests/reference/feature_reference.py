#!/usr/bin/env python3
"""Independent float64 NumPy reference for the feature-based scores of ``leep score --features``.

Six transferability metrics of a frozen feature extractor, computed the honest "whole data in
memory" way: load the n×D feature matrix F, upcast it to float64, and follow the published
algorithms step by step. No streaming, no sufficient statistics — that is what the Swift tool
does, and this file is what it is checked against (docs/transferability.md has the algebra that
links the two).

    LogME             You, Liu, Wang, Long, "LogME: Practical Assessment of Pre-trained Models
                      for Transfer Learning", ICML 2021 — as thuml's Transfer-Learning-Library
                      computes it (tllib/ranking/logme.py, log_maximum_evidence).
    H-score           Bao, Li, Huang, Zheng, "An Information-theoretic Approach to
                      Transferability in Task Transfer Learning", ICIP 2019 — as
                      tllib/ranking/hscore.py (h_score).
    shrinkage H-score Ibrahim, Ponomareva, Mazumder, "Newer is not always better: Rethinking
                      transferability metrics, their peculiarities, stability and performance",
                      ECML-PKDD 2022 — as tllib/ranking/hscore.py (regularized_h_score), whose
                      Ledoit–Wolf step is scikit-learn's LedoitWolf (written out here).
    GBC               Pándy et al., "Transferability Estimation using Bhattacharyya Class
                      Separability", CVPR 2022 — as google-research/google-research
                      stable_transfer/transferability/gbc.py (get_gbc_score), both Gaussian types.
    TransRate         Huang et al., "Frustratingly Easy Transferability Estimation", ICML 2022
                      — as tllib/ranking/transrate.py (transrate).
    SFDA              Shao et al., "Not All Models Are Equal: Predicting Model Transferability
                      in a Self-challenging Fisher Space", ECCV 2022 — as
                      TencentARC/SFDA metrics.py (SFDA_Score; iterative_A from utils.py).

Notation: f = F.astype(float64), n×D; y_i ∈ [0, Y) the labels; Y = max(y) + 1 unless given.

Conventions implemented here (each one is leepstream's, and is the published code's unless said)
-----------------------------------------------------------------------------------------------
LogME (tllib ``log_maximum_evidence``, classification)
    G = fᵀf (D×D, NOT centred) and its eigen-decomposition G = V diag(s) Vᵀ.  tllib takes
    ``np.linalg.svd(G)``, which for a symmetric positive semi-definite G is the same thing with
    s = |λ|.  Here the same decomposition is computed without forming G: f = QR, R = UΣVᵀ,
    s = σ² (padded with zeros to D when n < D).  Reason, measured against 40-digit arithmetic
    (mpmath) on features offset + N(0, 1): eigen-decomposing a formed G in float64 puts LogME
    off by up to ~8e-8 relative at offset 1e4 and ~7e-7 at 1e5 — more than the 1e-8 the
    cross-check asks for — while this route stays within ~1e-12 (docs/transferability.md,
    section 5).  On ordinary data the two agree to ~1e-14.
    For each class c with at least one sample: y_c = (y == c) as float64, t = Vᵀ(fᵀy_c);
    α = β = 1, λ = α/β; up to 11 times:
        γ = Σ_k s_k/(s_k + λ);  m = V (t·β/(α + β s));  α_de = ‖m‖²;  α = γ/α_de;
        β_de = ‖y_c − f m‖²;   β = (n − γ)/β_de;      λ' = α/β;
        stop if |λ' − λ|/λ < 0.01, else λ = λ'.
    evidence_c = D/2·log α + n/2·log β − ½ Σ_k log(α + β s_k) − β/2·β_de − α/2·α_de − n/2·log 2π
    with the α, β of the last update and the α_de, β_de (the m) they were computed from.
    LogME = mean over classes of evidence_c / n.
    Empty classes (a gap in the labels, or Y given larger than max label + 1) are LEFT OUT of the
    mean: for them fᵀy_c = 0, m = 0, α = γ/0 — tllib divides by zero there (its numba kernel
    raises ZeroDivisionError; plain NumPy would give inf/nan).  This is leepstream's convention.
    (thuml/LogME's LogME.py differs: 1e-5 is added to α_de and β_de, and its default
    ``_fit_fixed_point`` is another iteration — see docs/transferability.md.)

H-score (tllib ``h_score``)
    cov_f = np.cov(f, rowvar=False)   (unbiased, divides by n − 1);
    g = f with every row replaced by the mean of its class;  cov_g = np.cov(g, rowvar=False);
    H = tr(pinv(cov_f) · cov_g).
    Differences from tllib, on purpose: (1) everything is float64 — tllib builds g with
    ``np.zeros_like(f)``, so for float16/float32 input the class means are rounded to the input
    dtype (cov_f is float64 either way, since np.cov upcasts); (2) D = 1 works — np.cov returns a
    0-d array there and tllib's ``np.linalg.pinv`` of it raises LinAlgError; here both
    covariances are made 1×1; (3) the pseudo-inverse cut-off below.

Pseudo-inverse cut-off (both H-scores)
    Singular values ≤ rcond·max are dropped, rcond = max(1e-10, D·2.220446049250313e-16) (the
    second is the D·ε tolerance of NumPy's matrix_rank).  (``np.linalg.pinv(…, hermitian=True)``:
    the matrices are symmetric, so their singular values are the |eigenvalues| and eigh replaces
    the SVD.)  tllib passes rcond = 1e-15; the two agree whenever the covariance is well
    conditioned, but when it is singular (D > n − 1, so rank ≤ n − 1) its zero eigenvalues come
    out as rounding noise of order ε·max, straddling 1e-15·max, and each one kept adds an O(1)
    garbage term to the trace: tllib's value then depends on rounding.  A real eigenvalue below
    1e-10·max (a nearly dead ReLU unit) is known only to about ε·max, so its term, too, would
    depend on the order of the sums.

Shrinkage H-score (tllib ``regularized_h_score``)
    f_c = f − mean(f) (tllib centres first).  Ledoit–Wolf exactly as scikit-learn's
    ``LedoitWolf(assume_centered=False).fit(f_c)`` (which centres again; the second centring
    subtracts a mean that is rounding noise, and is kept here for fidelity):
        X = f_c − mean(f_c);  S = XᵀX/n (biased);  μ = tr S / D;
        D = 1:  shrinkage 0, cov = mean(x²);
        else:   b_ = Σ_i ‖x_i‖⁴  (the sum of all entries of X2ᵀX2, X2 = X∘X);  d_ = ‖S‖_F²;
                b = (b_/n − d_)/(D·n);  d = (d_ − 2μ·tr S + D·μ²)/D;  b = min(b, d);
                a = 0 if b == 0 else b/d;   cov_a = (1 − a)·S + a·μ·I.
    g = f_c with every row replaced by its class mean;  cov_g = np.cov(g, rowvar=False);
    H_a = tr(pinv(cov_a) · (1 − a)·cov_g), with the cut-off above.
    (scikit-learn accumulates b_ and d_ in 1000×1000 blocks; the blocking is a memory
    optimisation and changes only rounding.)

Present classes (GBC, TransRate, SFDA)
    The three newer metrics work on the classes that have at least one row, in np.unique order;
    K = their number.  Y (max label + 1 or --target-classes) plays no part in them.

GBC (stable_transfer ``get_gbc_score``, gaussian_type 'diagonal' and 'spherical')
    Per present class c: μ_c = mean of its rows, v_c = population variance per dimension
    (ddof 0, two-pass: mean((f_c − μ_c)²)), floored: σ_c = max(v_c, 1e-4) elementwise.
    'spherical': σ_c is replaced by the scalar mean(σ_c) — of the FLOORED vector.
    BD(c1, c2) = Σ_d (μ1 − μ2)²/σ̄ / 8 + ½ (Σ log σ̄ − ½ Σ log σ1 − ½ Σ log σ2), σ̄ = (σ1 + σ2)/2;
    for 'spherical' the three log sums are of scalars (the log is NOT multiplied by D) while
    the first sum still runs over the D dimensions — exactly as the published code.
    GBC = −Σ_{c1 ≠ c2} exp(−BD(c1, c2)) over ORDERED pairs (each unordered pair twice), so
    −K(K − 1) ≤ GBC ≤ 0: −K(K − 1) for identical class distributions, → 0 for separated ones.
    Differences from stable_transfer, on purpose: (1) float64 — TensorFlow computes in the
    features' dtype (float32 from a Keras model); (2) fewer than 2 present classes: there is no
    pair and GBC is undefined (unscored); the published code sums an empty list and returns
    −0.0, the best possible score.  stable_transfer's experiments reduce the features to 64
    dimensions by PCA before GBC (config gbc.pca_reduction = 64); get_gbc_score itself does not,
    and neither does leepstream (docs/transferability.md, section 8).

TransRate (tllib ``transrate``, eps = 1e-4)
    f ← f − mean(f) (the global mean); R(Z) = ½ log det(I + ZᵀZ/(n_Z·eps)), n_Z = rows of Z;
    TransRate = R(f) − Σ_{present c} R(f[y == c]) / K.  The class blocks are NOT re-centred
    (they keep the global centring).  R is computed here from Z's singular values,
    R(Z) = ½ Σ_k log1p(σ_k²/(n_Z·eps)), instead of slogdet of a formed I + ZᵀZ/(n_Z·eps): the
    same number, without forming ZᵀZ.
    Difference from tllib, on purpose: tllib divides by C = max label + 1 and loops over
    0 … C−1; a label value with no row makes `1 / (n * eps)` divide by zero (ZeroDivisionError
    with the default Python float eps; with a NumPy float eps the empty block contributes
    R = 0 and still counts in C).  leepstream sums over the present classes and divides by K.
    Always defined for n ≥ 2 (K = 1 gives exactly 0).

SFDA (TencentARC/SFDA ``SFDA_Score``)
    Translation: every step is invariant under adding one vector to all rows (the scatters,
    the mixing — an affine combination with weights p and 1 − p — and the logits up to a
    per-row constant, which softmax ignores), so f is centred by its global mean first.  The
    published code does not centre, and its logits xᵀB⁻¹μ_c − ½μ_cᵀB⁻¹μ_c then cancel
    catastrophically under a large common offset (two numbers of size ‖offset‖²/σ² whose
    difference is O(1)); here they are computed as (x − m)ᵀB⁻¹(μ_c − m) − ½(μ_c − m)ᵀB⁻¹(μ_c − m)
    with m the fit's global mean.
    A fit on rows x with class counts n_c, priors π_c = n_c/n, class means μ_c:
        Sw = Σ_c π_c cov_c (population covariances, np.cov bias=1) = Σ_c Σ_{i∈c} (x_i − μ_c)(x_i − μ_c)ᵀ / n;
        B = (1 − s) Sw + s · tr(Sw)/D · I;
        logit_ic = x_iᵀ B⁻¹ μ_c − ½ μ_cᵀ B⁻¹ μ_c + log π_c  (in the centred form above);
        P = softmax(logits) (row maximum subtracted).
    The published fit takes coef = means·V·Vᵀ from scipy's eigh(St − B, B), St the shrunk total
    covariance: for the full B-orthonormal eigenbasis VᵀBV = I, V is square and invertible, so
    V Vᵀ = B⁻¹ and St drops out; coef = means·B⁻¹ is computed directly here (from the
    eigen-decomposition of B).  test_public_algorithms checks the identity numerically.
    Shrinkage (first fit only): λ = iterative_A(Sw, 3): x = Sw·1; three times y = Sw x/‖Sw x‖,
    x = Sw y/‖Sw y‖; λ = xᵀ Sw y.  s = max(exp(−5λ), 1e-10).
    Score: fit 1 on f gives P; softened p_i = exp(P_i,y_i)/Σ_k exp(P_ik) (a second softmax of
    the probabilities themselves); m̄_c = mean of the OTHER classes' means, each class weighted
    equally: (Σ_k μ_k − μ_c)/(K − 1); mixed rows x̃_i = p_i f_i + (1 − p_i) m̄_{y_i} (ConfMix);
    fit 2 on the mixed rows with fit 1's s (no new power iteration); SFDA = mean over the rows of
    fit 2's probability of the true class, evaluated ON THE MIXED ROWS.
    Differences from the published code, on purpose: (1) float64 throughout — it mixes X in
    place, so for float16/32 input the mixed rows are rounded to the input dtype (and the
    caller's array is overwritten); here nothing is mutated; (2) present classes, np.unique
    order — the published fit compares np.unique's inverse indices with the raw label values,
    which works only for labels exactly 0 … K−1 (a gap makes a class covariance the mean of an
    empty slice, NaN, and scipy's eigh raise ValueError; the ConfMix loop and the final
    indexing also use raw values); (3) D = 1 works (the published _cov reads shape[0] of
    np.cov's 0-d result: IndexError); (4) undefined cases are unscored, not NaN or an
    exception: K < 2 (m̄ divides by K − 1 = 0); no within-class scatter, tr(Sw) ≤ D·ε·tr(St)
    with St the population covariance of all rows (every class's rows identical, as for
    features = one-hot of the labels: exactly, Sw = 0 and the published power iteration divides
    0/0; in floating point Sw may instead be rounding noise, and λ, s = exp(−5λ) ≈ 1 and
    B = s·tr(Sw)/D·I would be noise that still yields a "score" of 1.0); an exactly zero
    vector in the power iteration (Sw·1 = 0 with Sw ≠ 0 — the published 0/0 again); and a
    shrunk scatter B that is not numerically positive definite in either fit: smallest
    eigenvalue ≤ ε·largest (cond B ≥ 1/ε, about where a Cholesky factorisation starts to
    fail).  Not the D·ε cut-off of the H-scores: with s at its floor, cond B is about
    1e10·λmax/(tr Sw/D) when Sw is singular, and for 2048-d features whose within-class
    spectrum has a dominant direction (λmax/(tr Sw/D) of a few hundred) that sits at 1/(D·ε) —
    the verdict would flip with rounding between implementations.  Since s ≥ 1e-10, B reaches
    1/ε only if λmax/(tr Sw/D) ≥ s/ε ≈ 4.5e5.  When D ≥ n − K, Sw is singular, s·tr(Sw)/D
    regularises it, and the score saturates towards 1 (TencentARC/SFDA issue 5): that value is
    reported, it is defined.
    The softened probability p lies in [1/(e + K − 1), e/(e + K − 1)] (a softmax of numbers in
    [0, 1] summing to 1): ConfMix never keeps a row whole nor replaces it entirely.
    sfda_shrinkage is s, a companion of the score: None whenever sfda is (as the binary's
    companion keys), and not named in "unscored" itself.

Undefined values ("unscored")
    A metric that has no value on the data is reported as None (JSON null) and named by its
    score's key, with the reason, in an "unscored" object {key: reason} — present only when
    something is unscored; its companion keys (sfda_shrinkage) are None with it:
    GBC with fewer than 2 present classes; SFDA as above; LogME when it is
    not finite (a class fitted exactly, for example features = one-hot of the labels: the
    residual ‖y_c − f m‖² reaches 0 and β = ∞; a residual at most EXACT_FIT_RESIDUAL · n_c is
    rounding and counts as 0, as in the binary — with D ≥ n − 1 it is all that is left, and
    its value depends on the order of the sums).  H-score, the shrinkage H-score and TransRate
    are always defined for valid input.

Scope and validation
    n ≥ 2 (n = 1 has no covariance and no score): an error.  Features must be 2-D, floating
    point, finite, D ≥ 1.  Labels: 1-D integers in [0, Y), one per feature row.

Usage as a command-line tool::

    python3 feature_reference.py F.npy L.npy [--target-classes Y]

prints one JSON object with the keys logme, hscore, hscore_shrinkage, ledoit_wolf_shrinkage (the
α of the shrinkage H-score), gbc_diagonal, gbc_spherical, transrate, sfda, sfda_shrinkage,
n, target_classes, feature_width, and "unscored" when some value is null (the feature part of
what ``leep score --features … --json`` prints).
"""

from __future__ import annotations

import sys

import numpy as np

import reference_cli

#: Double-precision machine epsilon, 2**-52.
EPSILON = 2.220446049250313e-16


class Unscored(Exception):
    """A metric with no value on these data (not an input error): the reason, for "unscored"."""


def pinv_rcond(width: int) -> float:
    """The relative cut-off of the pseudo-inverse: max(1e-10, D·ε) (the binary's: an eigenvalue
    below 1e-10 · max is known to no better than ε · max / λ, so its term would be rounding)."""
    return max(1e-10, width * EPSILON)


def _validated_inputs(features, labels, target_classes):
    """Returns (f as float64 n×D, labels as int64 length n, Y) or raises ValueError."""
    features = np.asarray(features)
    labels = np.asarray(labels)
    if features.ndim != 2:
        raise ValueError(f"features must be 2-D (n×D), got shape {features.shape}")
    if features.dtype.kind != "f":
        raise ValueError(f"features must be floating point, got dtype {features.dtype}")
    n, width = features.shape
    if width == 0:
        raise ValueError(f"features must have at least one column, got shape {features.shape}")
    if n < 2:
        raise ValueError(f"need at least 2 samples for a covariance, got n = {n}")
    num_target = reference_cli.target_classes_of(labels, n, "feature", target_classes)
    f = features.astype(np.float64)  # exact upcast of the stored values
    finite = np.isfinite(f)
    if not finite.all():
        row = int(np.argmin(finite.all(axis=1)))
        raise ValueError(f"features row {row} is not finite")
    return f, labels.astype(np.int64), num_target


# ----------------------------------------------------------------------------------------------
# LogME
# ----------------------------------------------------------------------------------------------


def gram_spectrum(f):
    """(s, V): G = fᵀf = V diag(s) Vᵀ, s of length D (descending), V of shape D×k, k = min(n, D).

    Computed as f = QR (Householder), R = U diag(σ) Vᵀ, s = σ² — so G = RᵀR = V diag(σ²) Vᵀ is
    never formed.  Mathematically this is tllib's ``np.linalg.svd(fᵀf)``; numerically it is
    better: an eigen-decomposition of a formed G errs by about ε·‖G‖ on every eigenvalue, and
    when the features share a large common offset μ that is ~ε‖μ‖²/variance of the small ones
    (~1e-7 at an offset of 1e4), whereas the singular values of f (or R) err by ε·‖f‖, i.e.
    ~1e-11 relative there (docs/transferability.md, section 5).
    When n < D the D − n missing eigenvalues are exact zeros (padded), which is what thuml's
    issue 23 is about; their eigenvectors are not needed (fᵀy_c has no component there).
    """
    n, width = f.shape
    r = np.linalg.qr(f, mode="r")  # k×D, RᵀR = fᵀf
    _, sigma, vh = np.linalg.svd(r, full_matrices=False)
    s = np.zeros(width)
    s[: sigma.size] = sigma ** 2
    return s, vh.T


# A residual ‖y_c − f m‖² at most this times n_c is an exact fit (the binary's
# LogMEMetric.exactFitResidual).
EXACT_FIT_RESIDUAL = 1e-10


def class_evidence(f, y_c, s, v, details=None):
    """LogME evidence / n for one 0/1 target vector y_c (tllib's per-class loop, float64).

    s: the D eigenvalues of G = fᵀf; v: its eigenvectors for the first v.shape[1] of them (the
    others have s = 0 and carry no part of fᵀy_c).  When `details` is a dict, the final state is
    stored in it: alpha, beta (the values in the evidence) and alpha_m, beta_m (the ones m was
    computed with — the previous iterate: tllib evaluates the evidence at the updated α, β but
    with the α_de = ‖m‖², β_de = ‖y − f m‖² of the m from before the update).
    """
    n, width = f.shape
    s_v = s[: v.shape[1]]
    alpha, beta = 1.0, 1.0
    lam = alpha / beta
    t = v.T @ (f.T @ y_c)
    for iteration in range(11):
        gamma = np.sum(s / (s + lam))
        alpha_m, beta_m = alpha, beta
        m = v @ (t * beta / (alpha + beta * s_v))
        alpha_de = np.sum(m * m)
        alpha = gamma / alpha_de
        beta_de = np.sum((y_c - f @ m) ** 2)
        if beta_de <= EXACT_FIT_RESIDUAL * np.sum(y_c):
            return float("inf")  # an exact fit: rounding is all that is left of the residual
        beta = (n - gamma) / beta_de
        new_lam = alpha / beta
        if abs(new_lam - lam) / lam < 0.01:
            break
        lam = new_lam
    evidence = (
        width / 2.0 * np.log(alpha)
        + n / 2.0 * np.log(beta)
        - 0.5 * np.sum(np.log(alpha + beta * s))
        - beta / 2.0 * beta_de
        - alpha / 2.0 * alpha_de
        - n / 2.0 * np.log(2.0 * np.pi)
    )
    if details is not None:
        details.update(alpha=float(alpha), beta=float(beta), alpha_m=float(alpha_m),
                       beta_m=float(beta_m), iterations=iteration + 1, m=m)
    return float(evidence / n)


def logme(features, labels, target_classes=None) -> float:
    """LogME (tllib log_maximum_evidence, classification); empty classes left out of the mean."""
    f, labels, num_target = _validated_inputs(features, labels, target_classes)
    s, v = gram_spectrum(f)
    evidences = []
    for c in range(num_target):
        y_c = (labels == c).astype(np.float64)
        if not y_c.any():
            continue  # no sample of class c: left out (tllib would divide by zero)
        evidences.append(class_evidence(f, y_c, s, v))
    return float(np.mean(evidences))


# ----------------------------------------------------------------------------------------------
# H-score
# ----------------------------------------------------------------------------------------------


def class_mean_rows(f, labels):
    """g: every row of f replaced by the mean of the rows of its class (float64)."""
    g = np.zeros_like(f)  # f is float64 here, so g is too (tllib: the input dtype)
    for c in np.unique(labels):
        rows = labels == c
        g[rows] = np.mean(f[rows], axis=0)
    return g


def _covariance(x):
    """np.cov(x, rowvar=False), as a D×D matrix also for D = 1 (np.cov gives 0-d there)."""
    return np.atleast_2d(np.cov(x, rowvar=False))


def hscore(features, labels, target_classes=None) -> float:
    """H-score tr(pinv(cov f)·cov E[f|y]) (tllib h_score), float64, rcond max(1e-10, D·ε)."""
    f, labels, _ = _validated_inputs(features, labels, target_classes)
    cov_f = _covariance(f)
    cov_g = _covariance(class_mean_rows(f, labels))
    pinv = np.linalg.pinv(cov_f, rcond=pinv_rcond(f.shape[1]), hermitian=True)
    return float(np.trace(pinv @ cov_g))


def ledoit_wolf(x):
    """(covariance, shrinkage) as scikit-learn's LedoitWolf(assume_centered=False).fit(x)."""
    n, width = x.shape
    x = x - x.mean(axis=0)
    if width == 1:
        return np.atleast_2d(np.mean(x ** 2)), 0.0
    emp_cov = x.T @ x / n  # S, biased
    trace = np.sum(x ** 2) / n  # tr S, as scikit-learn sums it (from the squared entries)
    mu = trace / width
    beta_ = np.sum(np.sum(x ** 2, axis=1) ** 2)  # Σ_i ‖x_i‖⁴ = sum of all entries of X2ᵀX2
    delta_ = np.sum(emp_cov ** 2)  # ‖S‖_F²
    beta = (beta_ / n - delta_) / (width * n)
    delta = (delta_ - 2.0 * mu * trace + width * mu ** 2) / width
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else beta / delta
    shrunk = (1.0 - shrinkage) * emp_cov
    shrunk[np.diag_indices(width)] += shrinkage * mu
    return shrunk, float(shrinkage)


def shrinkage_hscore_and_alpha(features, labels, target_classes=None) -> tuple[float, float]:
    """(shrinkage H-score, Ledoit–Wolf shrinkage α) — tllib regularized_h_score and its α."""
    f, labels, _ = _validated_inputs(features, labels, target_classes)
    f = f - np.mean(f, axis=0, keepdims=True)
    cov_a, shrinkage = ledoit_wolf(f)
    cov_g = _covariance(class_mean_rows(f, labels))
    pinv = np.linalg.pinv(cov_a, rcond=pinv_rcond(f.shape[1]), hermitian=True)
    return float(np.trace(pinv @ ((1.0 - shrinkage) * cov_g))), shrinkage


def hscore_shrinkage(features, labels, target_classes=None) -> float:
    """Shrinkage H-score tr(pinv(cov_a)·(1 − a)·cov E[f|y]) (tllib regularized_h_score)."""
    return shrinkage_hscore_and_alpha(features, labels, target_classes)[0]


# ----------------------------------------------------------------------------------------------
# GBC
# ----------------------------------------------------------------------------------------------

#: stable_transfer's variance floor: tf.maximum(variance, 1e-4).
GBC_VARIANCE_FLOOR = 1e-4


def present_classes(labels) -> np.ndarray:
    """The label values that have at least one row, ascending (np.unique)."""
    return np.unique(labels)


def gbc(features, labels, gaussian_type: str, target_classes=None) -> float:
    """GBC (stable_transfer get_gbc_score) in float64 over the present classes; Unscored for < 2."""
    if gaussian_type not in ("diagonal", "spherical"):
        raise ValueError(f"gaussian_type must be 'diagonal' or 'spherical', got {gaussian_type!r}")
    f, labels, _ = _validated_inputs(features, labels, target_classes)
    classes = present_classes(labels)
    if classes.size < 2:
        raise Unscored(f"GBC needs at least 2 classes with samples (it sums over pairs of classes); "
                       f"{classes.size} present")
    stats = []
    for c in classes:
        rows = f[labels == c]
        mean = rows.mean(axis=0)
        variance = np.mean((rows - mean) ** 2, axis=0)  # population variance, two-pass
        sigma = np.maximum(variance, GBC_VARIANCE_FLOOR)
        if gaussian_type == "spherical":
            sigma = np.mean(sigma)  # a scalar: the log terms below are NOT multiplied by D
        stats.append((mean, sigma))
    total = 0.0
    for i, (mu1, sigma1) in enumerate(stats):
        for j, (mu2, sigma2) in enumerate(stats):
            if i == j:
                continue
            avg = (sigma1 + sigma2) / 2
            first = np.sum((mu1 - mu2) ** 2 / avg) / 8
            second = np.sum(np.log(avg)) - 0.5 * np.sum(np.log(sigma1)) - 0.5 * np.sum(np.log(sigma2))
            total += np.exp(-(first + 0.5 * second))
    return float(-total)


# ----------------------------------------------------------------------------------------------
# TransRate
# ----------------------------------------------------------------------------------------------


def coding_rate(z, eps: float = 1e-4) -> float:
    """R(Z) = ½ log det(I + ZᵀZ/(n_Z·eps)) = ½ Σ_k log1p(σ_k(Z)²/(n_Z·eps)), ZᵀZ never formed."""
    sigma = np.linalg.svd(z, compute_uv=False)
    return float(0.5 * np.sum(np.log1p(sigma ** 2 / (z.shape[0] * eps))))


def transrate(features, labels, eps: float = 1e-4, target_classes=None) -> float:
    """TransRate (tllib transrate): R(f) − Σ_{present c} R(f_c)/K, f centred by its global mean."""
    f, labels, _ = _validated_inputs(features, labels, target_classes)
    f = f - f.mean(axis=0)
    classes = present_classes(labels)
    within = sum(coding_rate(f[labels == c], eps) for c in classes)
    return float(coding_rate(f, eps) - within / classes.size)


# ----------------------------------------------------------------------------------------------
# SFDA
# ----------------------------------------------------------------------------------------------

#: SFDA's floor on the adaptive shrinkage: max(exp(−5λ), 1e-10).
SFDA_SHRINKAGE_FLOOR = 1e-10


def _class_means_and_within(x, index, counts):
    """(K×D class means, Sw = Σ_c π_c·cov_c = Σ_c Σ_{i∈c} (x_i − μ_c)(x_i − μ_c)ᵀ / n)."""
    n, width = x.shape
    means = np.zeros((counts.size, width))
    within = np.zeros((width, width))
    for k in range(counts.size):
        rows = x[index == k]
        means[k] = rows.mean(axis=0)
        centred = rows - means[k]
        within += centred.T @ centred
    return means, within / n


def sfda_power_iteration(sw, total_trace: float) -> float:
    """SFDA's λ (utils.py iterative_A(Sw, 3)).  Unscored when there is no within-class scatter
    to speak of — tr(Sw) ≤ D·ε·tr(St), St the population covariance of all rows (tr St =
    `total_trace`): every class's rows identical up to rounding, where λ, s and B would be
    rounding noise (exactly 0 in one implementation, 1e-33 in another) — and when a vector of
    the iteration is exactly 0 (the published code divides 0/0 there)."""
    width = sw.shape[0]
    if not np.trace(sw) > width * EPSILON * total_trace:
        raise Unscored("SFDA is undefined: no within-class scatter (tr Sw ≤ D·ε·tr St: every "
                       "class's rows are identical)")
    x = sw.sum(axis=1)
    for _ in range(3):
        t = sw @ x
        norm = np.linalg.norm(t)
        if norm == 0:
            raise Unscored("SFDA is undefined: the power iteration on the within-class scatter "
                           "(started from Sw·1) reaches the zero vector")
        y = t / norm
        t = sw @ y
        norm = np.linalg.norm(t)
        if norm == 0:
            raise Unscored("SFDA is undefined: the power iteration on the within-class scatter "
                           "(started from Sw·1) reaches the zero vector")
        x = t / norm
    return float(x @ sw @ y)


def sfda_probabilities(x, index, counts, shrinkage):
    """One SFDA fit on rows x (class index 0 … K−1 per row) with shrinkage s, evaluated on the
    same rows: the n×K softmax of x B⁻¹ μ_cᵀ − ½ μ_cᵀ B⁻¹ μ_c + log π_c, B = (1 − s)Sw +
    s·tr(Sw)/D·I, in the translation-free form (module docstring).  Unscored when B is
    numerically singular: not positive definite to a Cholesky factorisation, or its 1-norm
    condition number κ₁(B) = ‖B‖₁‖B⁻¹‖₁ at least 1/ε (the binary estimates κ₁ from its factor)."""
    n, width = x.shape
    means, sw = _class_means_and_within(x, index, counts)
    shrunk = (1.0 - shrinkage) * sw
    shrunk[np.diag_indices(width)] += shrinkage * np.trace(sw) / width
    try:
        np.linalg.cholesky(shrunk)
        reciprocal = 1.0 / (np.linalg.norm(shrunk, 1) * np.linalg.norm(np.linalg.inv(shrunk), 1))
    except np.linalg.LinAlgError:
        reciprocal = 0.0
    if not reciprocal > EPSILON:
        raise Unscored("SFDA is undefined: the shrunk within-class scatter is numerically singular "
                       f"(1/κ₁ = {reciprocal:.3e})")
    w, u = np.linalg.eigh(shrunk)
    centre = x.mean(axis=0)
    d = means - centre  # K×D
    coef = (u @ ((u.T @ d.T) / w[:, None])).T  # K×D: row c is B⁻¹(μ_c − m)
    logits = (x - centre) @ coef.T - 0.5 * np.sum(d * coef, axis=1) + np.log(counts / n)
    logits -= logits.max(axis=1, keepdims=True)
    prob = np.exp(logits)
    return prob / prob.sum(axis=1, keepdims=True)


def sfda(features, labels, target_classes=None) -> tuple[float, float]:
    """(SFDA score, shrinkage s) — TencentARC/SFDA SFDA_Score in float64 on the present classes."""
    f, labels, _ = _validated_inputs(features, labels, target_classes)
    f = f - f.mean(axis=0)  # SFDA is translation invariant; see the module docstring
    n = f.shape[0]
    classes, index = np.unique(labels, return_inverse=True)
    counts = np.bincount(index)
    if classes.size < 2:
        raise Unscored(f"SFDA needs at least 2 classes with samples (ConfMix mixes towards the other "
                       f"classes' means); {classes.size} present")
    means, sw = _class_means_and_within(f, index, counts)
    total_trace = float(np.sum(f * f)) / n  # tr St
    shrinkage = max(float(np.exp(-5.0 * sfda_power_iteration(sw, total_trace))), SFDA_SHRINKAGE_FLOOR)
    rows = np.arange(n)
    first = sfda_probabilities(f, index, counts, shrinkage)
    softened = np.exp(first) / np.exp(first).sum(axis=1, keepdims=True)
    own = softened[rows, index][:, None]
    others = (means.sum(axis=0) - means) / (classes.size - 1)  # K×D: mean of the other classes' means
    mixed = own * f + (1.0 - own) * others[index]
    second = sfda_probabilities(mixed, index, counts, shrinkage)
    return float(np.mean(second[rows, index])), shrinkage


# ----------------------------------------------------------------------------------------------
# All of them
# ----------------------------------------------------------------------------------------------


def feature_scores(features, labels, target_classes=None) -> dict:
    """The feature part of `leep score --features … --json`: the scores, the Ledoit–Wolf
    shrinkage α the shrinkage H-score used, SFDA's shrinkage, the counts, and "unscored"
    {score key: reason} when a metric is undefined on these data (its keys are then None)."""
    f, label_array, num_target = _validated_inputs(features, labels, target_classes)
    shrinkage_score, alpha = shrinkage_hscore_and_alpha(f, label_array, num_target)
    unscored: dict[str, str] = {}

    with np.errstate(all="ignore"):
        logme_value = logme(f, label_array, num_target)
    if not np.isfinite(logme_value):
        unscored["logme"] = ("LogME is not finite: a class is fitted exactly "
                             "(zero residual ‖y_c − f m‖², β = ∞)")
        logme_value = None

    def attempt(key, compute):
        try:
            return compute()
        except Unscored as reason:
            unscored[key] = str(reason)
            return None

    gbc_diagonal = attempt("gbc_diagonal", lambda: gbc(f, label_array, "diagonal", num_target))
    gbc_spherical = attempt("gbc_spherical", lambda: gbc(f, label_array, "spherical", num_target))
    sfda_value, sfda_s = attempt("sfda", lambda: sfda(f, label_array, num_target)) or (None, None)

    scores = {
        "logme": logme_value,
        "hscore": hscore(f, label_array, num_target),
        "hscore_shrinkage": shrinkage_score,
        "ledoit_wolf_shrinkage": alpha,
        "gbc_diagonal": gbc_diagonal,
        "gbc_spherical": gbc_spherical,
        "transrate": transrate(f, label_array, target_classes=num_target),
        "sfda": sfda_value,
        "sfda_shrinkage": sfda_s,
        "n": int(f.shape[0]),
        "target_classes": int(num_target),
        "feature_width": int(f.shape[1]),
    }
    if unscored:
        scores["unscored"] = unscored
    return scores


def main(argv=None) -> int:
    return reference_cli.run("Float64 reference LogME / H-scores / GBC / TransRate / SFDA.", "features", "n×D .npy of features (float16/32/64)", feature_scores, argv)


if __name__ == "__main__":
    sys.exit(main())
