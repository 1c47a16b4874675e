"""GBC, TransRate and SFDA as their public implementations compute them, rewritten in NumPy for
the benchmark's anchor and for the reference tests (Tests/reference/test_public_algorithms.py
imports this file by path; it is the only copy):

    google-research/google-research  stable_transfer/transferability/gbc.py, get_gbc_score:
        TensorFlow.  Classes in the order tf.unique finds them; per class the mean and the
        population variance (tf.math.reduce_variance, two-pass, ddof 0) per dimension, floored by
        tf.maximum(variance, 1e-4); for 'spherical' each variance vector is replaced by its mean
        (a scalar).  Bhattacharyya distance
            BD = Σ(μ1 − μ2)²/σ̄ / 8 + ½ (Σ log σ̄ − ½ Σ log σ1 − ½ Σ log σ2),   σ̄ = (σ1 + σ2)/2,
        where for 'spherical' the second part's sums are of scalars (not D times the log) while
        the first still sums over the D dimensions.  GBC = −Σ_{c1} Σ_{c2 ≠ c1} exp(−BD(c1, c2)).
        Everything runs in the dtype of the features tensor; `dtype` below chooses that
        (None: the input's dtype, as TensorFlow; NumPy's float16 reductions use float32
        intermediates, so the emulation is not bit-for-bit TensorFlow's).
    thuml/Transfer-Learning-Library  tllib/ranking/transrate.py, transrate(features, labels, eps=1e-4):
        f − mean(f) (the input dtype: float32 stays float32); coding_rate(Z) = ½ slogdet(I +
        ZᵀZ/(n_Z·eps)) with n_Z = Z's row count; C = int(labels.max() + 1);
        TransRate = R(f) − Σ_{i<C} R(f[y == i]) / C.  A label value in [0, C) with no row makes
        n_Z = 0 and `1 / (n * eps)` a Python float division by zero: ZeroDivisionError
        (with eps passed as a NumPy float it is inf·0 = NaN instead).
    TencentARC/SFDA  metrics.py, SFDA_Score(X, y), class SFDA, _cov, softmax, _class_means, and
        utils.py iterative_A:  a first SFDA fit (adaptive shrinkage s = max(exp(−5 λ), 1e-10),
        λ = iterative_A(Sw, 3)), predict_proba, the "softening" exp(p)/Σexp(p), ConfMix
        (X[rows of y_] = p·X + (1 − p)·means_[y_], IN PLACE in X's dtype), a second fit with the
        first fit's shrinkage on the mixed X, and the mean probability of the true class on the
        mixed X.  The generalised eigenproblem scipy.linalg.eigh(Sb, shrunk_Sw) is done here
        without SciPy, as LAPACK's sygvd does it: B = LLᵀ (Cholesky), eigh(L⁻¹ A L⁻ᵀ), V = L⁻ᵀW
        (so VᵀBV = I), after SciPy's check_finite (ValueError on NaN/inf).  The reference prints
        "Shrinkage: …" to stdout; this rewrite does not (it would spoil the JSON below), and it
        mixes a copy of X, not the caller's array.

Rewritten from the published algorithms, not copied; the behaviour is theirs, including what
leepstream does differently (docs/transferability.md, section 8): labels are used as given
(SFDA's fit compares np.unique's inverse indices with the raw label values, so labels must be
exactly 0 … K−1; a gap makes a class's covariance the mean of an empty slice — NaN — and SciPy's
eigh raise ValueError), one-class GBC is −0.0, SFDA with one feature column raises IndexError
(np.cov of one column is 0-d and `_cov` reads its shape[0]).

    python bench/public_feature_metrics.py FEATURES.npy LABELS.npy [--metrics gbc,transrate,sfda] [--as-stored]

prints {"seconds": {"load": s, "gbc_diagonal": s, "gbc_spherical": s, "transrate": s, "sfda": s},
"peak_rss_mb", "gbc_diagonal", "gbc_spherical", "transrate", "sfda", "sfda_shrinkage"} for the
metrics asked for (default all): the features are upcast to float64 once after loading (what
leepstream computes in), unless --as-stored keeps the file's dtype (TensorFlow's float32 GBC,
tllib's float32 centring and Gram matrix, SFDA's float32 ConfMix).  A metric whose public code
raises or returns a non-finite value prints null, and {"errors": {key: "what happened"}}.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
import warnings

import numpy as np


# ---------------------------------------------------------------------------------------------
# GBC (stable_transfer get_gbc_score), TensorFlow ops replaced by NumPy
# ---------------------------------------------------------------------------------------------


def _tf_unique(values: np.ndarray) -> list:
    """tf.unique's first output: the distinct values in the order they first appear."""
    _, first = np.unique(values, return_index=True)
    return [values[i] for i in np.sort(first)]


def compute_bhattacharyya_distance(mu1, mu2, sigma1, sigma2):
    avg_sigma = (sigma1 + sigma2) / 2
    first_part = np.sum((mu1 - mu2) ** 2 / avg_sigma) / 8
    second_part = np.sum(np.log(avg_sigma))
    second_part -= 0.5 * np.sum(np.log(sigma1))
    second_part -= 0.5 * np.sum(np.log(sigma2))
    return first_part + 0.5 * second_part


def get_gbc_score(features, target_labels, gaussian_type: str, dtype=None) -> float:
    """get_gbc_score(features, target_labels, gaussian_type), in `dtype` (None: the input's)."""
    assert gaussian_type in ("diagonal", "spherical")
    features = np.asarray(features)
    if dtype is not None:
        features = features.astype(dtype)
    target_labels = np.asarray(target_labels)
    unique_labels = _tf_unique(target_labels)
    floor = features.dtype.type(1e-4)
    stats = {}
    for label in unique_labels:
        rows = features[target_labels == label]
        mean = np.mean(rows, axis=0)
        variance = np.mean(np.square(rows - mean), axis=0)  # tf.math.reduce_variance
        stats[int(label)] = (mean, np.maximum(variance, floor))
    per_class = []
    for c1 in unique_labels:
        temp = []
        for c2 in unique_labels:
            if c1 != c2:
                mu1, sigma1 = stats[int(c1)]
                mu2, sigma2 = stats[int(c2)]
                if gaussian_type == "spherical":
                    sigma1, sigma2 = np.mean(sigma1), np.mean(sigma2)
                temp.append(np.exp(-compute_bhattacharyya_distance(mu1, mu2, sigma1, sigma2)))
        per_class.append(np.sum(np.array(temp, dtype=features.dtype)))  # tf.reduce_sum([]) = 0
    return float(-np.sum(np.array(per_class, dtype=features.dtype)))


# ---------------------------------------------------------------------------------------------
# TransRate (tllib transrate)
# ---------------------------------------------------------------------------------------------


def coding_rate(features: np.ndarray, eps=1e-4) -> float:
    n, d = features.shape
    _, rate = np.linalg.slogdet(np.eye(d) + 1 / (n * eps) * features.transpose() @ features)
    return 0.5 * rate


def transrate(features: np.ndarray, labels: np.ndarray, eps=1e-4) -> float:
    f = features - np.mean(features, axis=0, keepdims=True)
    rf = coding_rate(f, eps)
    rfy = 0.0
    classes = int(labels.max() + 1)
    for i in range(classes):
        rfy += coding_rate(f[(labels == i).flatten()], eps)
    return float(rf - rfy / classes)


# ---------------------------------------------------------------------------------------------
# SFDA (TencentARC/SFDA metrics.py SFDA_Score, utils.py iterative_A)
# ---------------------------------------------------------------------------------------------


def _cov(x, shrinkage=-1):
    emp_cov = np.cov(np.asarray(x).T, bias=1)
    if shrinkage < 0:
        return emp_cov
    n_features = emp_cov.shape[0]  # IndexError for one feature column: np.cov gives 0-d
    mu = np.trace(emp_cov) / n_features
    shrunk_cov = (1.0 - shrinkage) * emp_cov
    shrunk_cov.flat[:: n_features + 1] += shrinkage * mu
    return shrunk_cov


def softmax(x, copy=True):
    if copy:
        x = np.copy(x)
    x -= np.max(x, axis=1).reshape((-1, 1))
    np.exp(x, x)
    x /= np.sum(x, axis=1).reshape((-1, 1))
    return x


def _class_means(x, y):
    """(means, means_): class means in np.unique order, and each class's mean of the OTHER
    classes' means (every class weighted equally; K = 1 divides by zero)."""
    classes, y = np.unique(y, return_inverse=True)
    cnt = np.bincount(y)
    means = np.zeros(shape=(len(classes), x.shape[1]))
    np.add.at(means, y, x)
    means /= cnt[:, None]
    means_ = np.zeros(shape=(len(classes), x.shape[1]))
    for i in range(len(classes)):
        means_[i] = (np.sum(means, axis=0) - means[i]) / (len(classes) - 1)
    return means, means_


def iterative_A(a, max_iterations=3):
    """utils.py: the largest eigenvalue of `a` by power iteration from a.sum(axis=1)."""
    x = a.sum(axis=1)
    for _ in range(max_iterations):
        temp = np.dot(a, x)
        y = temp / np.linalg.norm(temp, 2)
        temp = np.dot(a, y)
        x = temp / np.linalg.norm(temp, 2)
    return np.dot(np.dot(x.T, a), y)


def generalized_eigh(a, b):
    """scipy.linalg.eigh(a, b) (type 1, LAPACK sygvd's algorithm): ascending eigenvalues w and
    eigenvectors V with a V = b V diag(w), VᵀbV = I.  ValueError on NaN/inf (SciPy's
    check_finite), LinAlgError when b is not positive definite."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("array must not contain infs or NaNs")
    lower = np.linalg.cholesky(b)  # b = L Lᵀ
    half = np.linalg.solve(lower, a)  # L⁻¹ a
    c = np.linalg.solve(lower, half.T).T  # L⁻¹ a L⁻ᵀ (a symmetric)
    w, vectors = np.linalg.eigh((c + c.T) / 2)
    return w, np.linalg.solve(lower.T, vectors)  # V = L⁻ᵀ W


class SFDA:
    def __init__(self, shrinkage=None, priors=None, n_components=None):
        self.shrinkage = shrinkage
        self.priors = priors
        self.n_components = n_components

    def _solve_eigen(self, x, y, shrinkage):
        classes, y = np.unique(y, return_inverse=True)
        cnt = np.bincount(y)
        means = np.zeros(shape=(len(classes), x.shape[1]))
        np.add.at(means, y, x)
        means /= cnt[:, None]
        self.means_ = means

        cov = np.zeros(shape=(x.shape[1], x.shape[1]))
        for idx, group in enumerate(classes):
            xg = x[y == group, :]  # the inverse index compared with the raw label value
            cov += self.priors_[idx] * np.atleast_2d(_cov(xg))
        self.covariance_ = cov

        sw = self.covariance_  # within scatter
        if self.shrinkage is None:
            largest_evals_w = iterative_A(sw, max_iterations=3)
            shrinkage = max(np.exp(-5 * largest_evals_w), 1e-10)  # Python max: max(nan, 1e-10) is nan
            self.shrinkage = shrinkage
        else:
            shrinkage = self.shrinkage
        st = _cov(x, shrinkage=self.shrinkage)

        n_features = sw.shape[0]
        mu = np.trace(sw) / n_features
        shrunk_sw = (1.0 - self.shrinkage) * sw
        shrunk_sw.flat[:: n_features + 1] += self.shrinkage * mu

        sb = st - shrunk_sw  # "between scatter"
        evals, evecs = generalized_eigh(sb, shrunk_sw)
        evecs = evecs[:, np.argsort(evals)[::-1]]
        self.scalings_ = evecs
        self.coef_ = np.dot(self.means_, evecs).dot(evecs.T)
        self.intercept_ = -0.5 * np.diag(np.dot(self.means_, self.coef_.T)) + np.log(self.priors_)

    def fit(self, x, y):
        self.classes_ = np.unique(y)
        max_components = min(len(self.classes_) - 1, x.shape[1])
        if self.n_components is None:
            self._max_components = max_components
        else:
            if self.n_components > max_components:
                raise ValueError("n_components cannot be larger than min(n_features, n_classes - 1).")
            self._max_components = self.n_components
        _, y_t = np.unique(y, return_inverse=True)
        self.priors_ = np.bincount(y_t) / float(len(y))
        self._solve_eigen(x, y, shrinkage=self.shrinkage)
        return self

    def predict_proba(self, x):
        return softmax(np.dot(x, self.coef_.T) + self.intercept_)


def sfda_score_and_shrinkage(x, y) -> tuple[float, float]:
    """SFDA_Score(X, y) and the first fit's shrinkage.  X is copied first (its dtype kept), and
    the copy is mixed in place as the published code mixes X."""
    x = np.array(x, copy=True)
    y = np.asarray(y)
    n = len(y)
    num_classes = len(np.unique(y))

    first = SFDA()
    prob = first.fit(x, y).predict_proba(x)
    prob = np.exp(prob) / np.exp(prob).sum(axis=1, keepdims=True)  # "soften"
    _, means_ = _class_means(x, y)

    for y_ in range(num_classes):  # raw label values 0 … K−1
        indices = np.where(y == y_)[0]
        y_prob = np.take(prob, indices, axis=0)[:, y_]
        x[indices] = y_prob.reshape(len(y_prob), 1) * x[indices] + \
            (1 - y_prob.reshape(len(y_prob), 1)) * means_[y_]

    second = SFDA(shrinkage=first.shrinkage)
    prob = second.fit(x, y).predict_proba(x)
    return float(np.sum(prob[np.arange(n), y]) / n), float(first.shrinkage)


def sfda_score(x, y) -> float:
    """SFDA_Score(X, y)."""
    return sfda_score_and_shrinkage(x, y)[0]


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

METRICS = ("gbc", "transrate", "sfda")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Time the public GBC / TransRate / SFDA algorithms.")
    parser.add_argument("features")
    parser.add_argument("labels")
    parser.add_argument("--metrics", default=",".join(METRICS),
                        help="comma-separated subset of gbc,transrate,sfda (default: all)")
    parser.add_argument("--as-stored", action="store_true",
                        help="keep the file's dtype instead of upcasting to float64")
    args = parser.parse_args(argv)
    wanted = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = sorted(set(wanted) - set(METRICS))
    if unknown:
        parser.error(f"unknown metrics {unknown}; choose from {list(METRICS)}")

    seconds: dict[str, float] = {}
    values: dict[str, float | None] = {}
    errors: dict[str, str] = {}
    start = time.perf_counter()
    features = np.load(args.features)
    if not args.as_stored:
        features = features.astype(np.float64)
    labels = np.load(args.labels)
    seconds["load"] = time.perf_counter() - start

    def timed(keys, compute):
        begin = time.perf_counter()
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")  # the published code's empty-slice and 0/0 warnings
                results = compute()
        except Exception as error:  # the published code's own failure: reported, not hidden
            results = (None,) * len(keys)
            for key in keys:
                errors[key] = f"{type(error).__name__}: {error}"
        seconds[keys[0]] = time.perf_counter() - begin
        for key, value in zip(keys, results):
            if value is not None and not math.isfinite(value):
                errors[key] = f"not finite: {value}"
                value = None
            values[key] = value

    if "gbc" in wanted:
        for kind in ("diagonal", "spherical"):
            timed([f"gbc_{kind}"], lambda kind=kind: (get_gbc_score(features, labels, kind),))
    if "transrate" in wanted:
        timed(["transrate"], lambda: (transrate(features, labels),))
    if "sfda" in wanted:
        timed(["sfda", "sfda_shrinkage"], lambda: sfda_score_and_shrinkage(features, labels))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB on Linux
    report = {"seconds": seconds, "peak_rss_mb": peak_mb, **values}
    if errors:
        report["errors"] = errors
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
