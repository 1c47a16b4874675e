"""LogME, H-score and shrinkage H-score as thuml's Transfer-Learning-Library computes them, for
the benchmark's anchor (what most people run):

    tllib/ranking/logme.py   log_maximum_evidence: np.linalg.svd of the D×D Gram matrix fᵀf, then
                             for each class a fixed-point loop that multiplies the whole n×D
                             feature matrix by m at every iteration (f @ m);
    tllib/ranking/hscore.py  h_score: np.cov of the features, a full n×D matrix g of class means,
                             np.cov of g, pinv(rcond=1e-15);
                             regularized_h_score: the same after centring, with scikit-learn's
                             LedoitWolf (its blocked ledoit_wolf_shrinkage, rewritten here in
                             NumPy so the benchmark needs no scikit-learn).

Rewritten from the published algorithms, not copied; the behaviour is theirs, including what
leepstream does differently (docs/transferability.md): LogME from a formed fᵀf, an empty class
divides by zero (here NumPy's inf/nan with a warning; tllib's numba kernel raises), pinv with
rcond=1e-15, np.cov(f) of a single feature is 0-d (pinv then raises).  The features are loaded
and upcast to float64 once, as the three tllib functions are usually fed.

    python bench/thuml_features.py FEATURES.npy LABELS.npy

prints {"seconds", "peak_rss_mb", "logme", "hscore", "hscore_shrinkage"}: the wall time of the
whole thing, load included, and the process's peak resident memory.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np


# ---------------------------------------------------------------------------------------------
# LogME (tllib log_maximum_evidence, classification)
# ---------------------------------------------------------------------------------------------


def _each_evidence(y_, f, fh, v, s, vh, n, d):
    alpha, beta = 1.0, 1.0
    lam = alpha / beta
    tmp = vh @ (f @ y_)
    for _ in range(11):
        gamma = (s / (s + lam)).sum()
        m = v @ (tmp * beta / (alpha + beta * s))
        alpha_de = (m * m).sum()
        alpha = gamma / alpha_de
        beta_de = ((y_ - fh @ m) ** 2).sum()
        beta = (n - gamma) / beta_de
        new_lam = alpha / beta
        if np.abs(new_lam - lam) / lam < 0.01:
            break
        lam = new_lam
    evidence = (d / 2.0 * np.log(alpha) + n / 2.0 * np.log(beta)
                - 0.5 * np.sum(np.log(alpha + beta * s))
                - beta / 2.0 * beta_de - alpha / 2.0 * alpha_de
                - n / 2.0 * np.log(2 * np.pi))
    return evidence / n


def log_maximum_evidence(features: np.ndarray, labels: np.ndarray) -> float:
    fh = features.astype(np.float64)
    f = fh.transpose()
    d, n = f.shape
    v, s, vh = np.linalg.svd(f @ fh, full_matrices=True)
    evidences = []
    for c in range(int(labels.max() + 1)):
        y_ = (labels == c).astype(np.float64)
        evidences.append(_each_evidence(y_, f, fh, v, s, vh, n, d))
    return float(np.mean(evidences))


# ---------------------------------------------------------------------------------------------
# H-score (tllib h_score) and shrinkage H-score (tllib regularized_h_score)
# ---------------------------------------------------------------------------------------------


def _class_mean_matrix(f: np.ndarray, labels: np.ndarray) -> np.ndarray:
    g = np.zeros_like(f)  # the input dtype, as tllib
    for c in range(int(labels.max() + 1)):
        rows = labels == c
        if rows.any():  # tllib takes the mean of an empty slice (nan, a warning) and assigns it nowhere
            g[rows] = np.mean(f[rows, :], axis=0)
    return g


def h_score(features: np.ndarray, labels: np.ndarray) -> float:
    covf = np.cov(features, rowvar=False)
    covg = np.cov(_class_mean_matrix(features, labels), rowvar=False)
    return float(np.trace(np.dot(np.linalg.pinv(covf, rcond=1e-15), covg)))


def ledoit_wolf_shrinkage(x: np.ndarray, block_size: int = 1000) -> float:
    """scikit-learn's ledoit_wolf_shrinkage(x, assume_centered=True), blocks and all."""
    n, d = x.shape
    if d == 1:
        return 0.0
    blocks = d // block_size
    x2 = x ** 2
    trace = np.sum(x2, axis=0) / n
    mu = np.sum(trace) / d
    beta_ = 0.0  # Σ of all entries of x2ᵀx2
    delta_ = 0.0  # Σ of the squared entries of xᵀx
    edges = [slice(block_size * i, block_size * (i + 1)) for i in range(blocks)]
    edges.append(slice(block_size * blocks, None))
    for rows in edges:
        for cols in edges:
            beta_ += np.sum(np.dot(x2.T[rows], x2[:, cols]))
            delta_ += np.sum(np.dot(x.T[rows], x[:, cols]) ** 2)
    delta_ /= n ** 2
    beta = 1.0 / (d * n) * (beta_ / n - delta_)
    delta = (delta_ - 2.0 * mu * trace.sum() + d * mu ** 2) / d
    beta = min(beta, delta)
    return 0.0 if beta == 0 else beta / delta


def ledoit_wolf(x: np.ndarray, block_size: int = 1000) -> tuple[np.ndarray, float]:
    """scikit-learn's LedoitWolf(assume_centered=False).fit(x): (covariance_, shrinkage_)."""
    x = x - x.mean(0)  # LedoitWolf.fit subtracts location_ = x.mean(0)
    n, d = x.shape
    if d == 1:
        return np.atleast_2d((x ** 2).mean()), 0.0
    shrinkage = ledoit_wolf_shrinkage(x, block_size)
    emp_cov = np.dot(x.T, x) / n
    mu = np.sum(np.trace(emp_cov)) / d
    shrunk = (1.0 - shrinkage) * emp_cov
    shrunk.flat[:: d + 1] += shrinkage * mu
    return shrunk, shrinkage


def regularized_h_score(features: np.ndarray, labels: np.ndarray, block_size: int = 1000) -> float:
    f = features.astype("float64")
    f = f - np.mean(f, axis=0, keepdims=True)
    covf_alpha, alpha = ledoit_wolf(f, block_size)
    covg = np.cov(_class_mean_matrix(f, labels), rowvar=False)
    return float(np.trace(np.dot(np.linalg.pinv(covf_alpha, rcond=1e-15), (1 - alpha) * covg)))


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python bench/thuml_features.py FEATURES.npy LABELS.npy", file=sys.stderr)
        return 2
    start = time.perf_counter()
    features = np.load(argv[1]).astype(np.float64)
    labels = np.load(argv[2])
    scores = {
        "logme": log_maximum_evidence(features, labels),
        "hscore": h_score(features, labels),
        "hscore_shrinkage": regularized_h_score(features, labels),
    }
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # ru_maxrss is KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb, **scores}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
