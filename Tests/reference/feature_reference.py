#!/usr/bin/env python3
"""Independent float64 NumPy reference for the feature-based scores of ``leep score --features``.

Three transferability metrics of a frozen feature extractor, computed the honest "whole data in
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
    Singular values ≤ rcond·max are dropped, rcond = max(1e-15, D·2.220446049250313e-16) — the
    D·ε tolerance of NumPy's matrix_rank.  (``np.linalg.pinv(…, hermitian=True)``: the matrices
    are symmetric, so their singular values are the |eigenvalues| and eigh replaces the SVD.)  tllib passes rcond = 1e-15; the two agree whenever
    the covariance is well conditioned, but when it is singular (D > n − 1, so rank ≤ n − 1) its
    zero eigenvalues come out as rounding noise of order ε·max, straddling 1e-15·max, and each
    one kept adds an O(1) garbage term to the trace: tllib's value then depends on rounding.

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

Scope and validation
    n ≥ 2 (n = 1 has no covariance and no score): an error.  Features must be 2-D, floating
    point, finite, D ≥ 1.  Labels: 1-D integers in [0, Y), one per feature row.

Usage as a command-line tool::

    python3 feature_reference.py F.npy L.npy [--target-classes Y]

prints one JSON object with the keys logme, hscore, hscore_shrinkage, ledoit_wolf_shrinkage (the
α of the shrinkage H-score), n, target_classes, feature_width (the feature part of what
``leep score --features … --json`` prints).
"""

from __future__ import annotations

import sys

import numpy as np

import reference_cli

#: Double-precision machine epsilon, 2**-52.
EPSILON = 2.220446049250313e-16


def pinv_rcond(width: int) -> float:
    """The relative cut-off of the pseudo-inverse: max(1e-15, D·ε)."""
    return max(1e-15, width * EPSILON)


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
    """H-score tr(pinv(cov f)·cov E[f|y]) (tllib h_score), float64, rcond max(1e-15, D·ε)."""
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


def feature_scores(features, labels, target_classes=None) -> dict:
    """The feature part of `leep score --features … --json`: the three scores, the Ledoit–Wolf
    shrinkage α the shrinkage H-score used, and the counts."""
    f, label_array, num_target = _validated_inputs(features, labels, target_classes)
    shrinkage_score, alpha = shrinkage_hscore_and_alpha(f, label_array, num_target)
    return {
        "logme": logme(f, label_array, num_target),
        "hscore": hscore(f, label_array, num_target),
        "hscore_shrinkage": shrinkage_score,
        "ledoit_wolf_shrinkage": alpha,
        "n": int(f.shape[0]),
        "target_classes": int(num_target),
        "feature_width": int(f.shape[1]),
    }


def main(argv=None) -> int:
    return reference_cli.run("Float64 reference LogME / H-score / shrinkage H-score.", "features", "n×D .npy of features (float16/32/64)", feature_scores, argv)


if __name__ == "__main__":
    sys.exit(main())
