#!/usr/bin/env python3
"""Independent float64 NumPy reference for the scores computed by the Swift ``leep`` tool.

LEEP is defined in

    Cuong V. Nguyen, Tal Hassner, Matthias Seeger, Cedric Archambeau,
    "LEEP: A New Measure to Evaluate Transferability of Learned Representations",
    Proceedings of the 37th International Conference on Machine Learning (ICML 2020),
    PMLR 119. arXiv:2002.12462.

NCE (negative conditional entropy) is the baseline of Tran, Nguyen & Hassner,
"Transferability and Hardness of Supervised Classification Tasks" (ICCV 2019), computed as in
the LEEP paper with the source model's arg-max predictions as the "source labels" Ẑ.

Notation (the paper's symbols)
------------------------------
n          number of target samples x_1 .. x_n
Z          number of source classes (the paper's label set 𝒵)
Y          number of target classes (the paper's label set 𝒴)
θ          n×Z matrix, θ_iz = θ(x_i)_z, the source model's softmax output for sample i
y_i        target label of sample i, an integer in [0, Y)

Conventions implemented here
----------------------------
* Everything is computed in float64.  Inputs are upcast with ``astype(np.float64)``; a float16
  or float32 file is scored on its exact stored values (no renormalisation, no clipping).
* Empirical joint (paper Eq. 1):  P̂(y, z) = (1/n) Σ_{i : y_i = y} θ_iz            (Y×Z)
  Marginal (Eq. 2):               P̂(z)    = Σ_y P̂(y, z)
  Conditional (Eq. 3):            P̂(y | z) = P̂(y, z) / P̂(z);  a source class with
                                  P̂(z) = 0 gets P̂(y | z) = 0 for every y.
* Expected empirical prediction:  EEP_i = Σ_z θ_iz P̂(y_i | z)
  LEEP (Eq. 4):                   T(θ, D) = (1/n) Σ_i log EEP_i     (natural logarithm)
* NCE:  ẑ_i = argmax_z θ_iz (ties → lowest z).  c(y, z) = #{i : y_i = y, ẑ_i = z},
  c_z = Σ_y c(y, z).  NCE = −H(Y | Ẑ) = Σ_{(y,z) : c(y,z) > 0} (c(y,z)/n) log(c(y,z)/c_z).
* EEP accuracy: the fraction of samples with argmax_y Σ_z θ_iz P̂(y | z) == y_i
  (ties → lowest y).
* Y defaults to max(y) + 1.  An explicit ``target_classes`` may be larger (target classes
  without samples are allowed: their rows of P̂(y, z) are zero); it may not be smaller.
* Validation mirrors the CLI contract: θ must be 2-D, finite and non-negative, every row must
  sum to 1 within 1e-3 (absolute), labels must be a 1-D integer array of length n in [0, Y).

Usage as a command-line tool::

    python3 leep_reference.py P.npy L.npy [--target-classes Y]

prints one JSON object with the keys leep, nce, eep_accuracy, n, source_classes,
target_classes (the same object ``leep score --json`` prints).
"""

from __future__ import annotations

import sys

import numpy as np

import reference_cli

#: Largest accepted |Σ_z θ_iz − 1| (the CLI contract).
ROW_SUM_TOLERANCE = 1e-3


def _validated_inputs(theta, labels, target_classes):
    """Returns (θ as float64 n×Z, labels as int64 length n, Y) or raises ValueError."""
    theta = np.asarray(theta)
    labels = np.asarray(labels)

    if theta.ndim != 2:
        raise ValueError(f"predictions must be 2-D (n×Z), got shape {theta.shape}")
    if theta.dtype.kind != "f":
        raise ValueError(f"predictions must be floating point, got dtype {theta.dtype}")
    n, num_source = theta.shape
    if n == 0 or num_source == 0:
        raise ValueError(f"predictions must be non-empty, got shape {theta.shape}")

    num_target = reference_cli.target_classes_of(labels, n, "prediction", target_classes)

    theta = theta.astype(np.float64)  # exact upcast of the stored values
    if not np.all(np.isfinite(theta)):
        raise ValueError("predictions contain NaN or infinity")
    if np.any(theta < 0):
        raise ValueError("predictions contain negative values")
    row_error = np.abs(theta.sum(axis=1) - 1.0)
    if np.any(row_error > ROW_SUM_TOLERANCE):
        worst = int(np.argmax(row_error))
        raise ValueError(
            f"row {worst} sums to {theta[worst].sum()!r}, not 1 within {ROW_SUM_TOLERANCE}"
        )

    return theta, labels.astype(np.int64), num_target


def empirical_conditional(theta, labels, num_target):
    """P̂(y | z) as a Y×Z float64 array (paper Eqs. 1–3), plus the joint P̂(y, z)."""
    n, num_source = theta.shape

    # Eq. 1: P̂(y, z) = (1/n) Σ_{i : y_i = y} θ_iz.  np.add.at accumulates row i of θ into
    # row y_i of the joint, including repeated labels.
    joint = np.zeros((num_target, num_source), dtype=np.float64)
    np.add.at(joint, labels, theta)
    joint /= n

    # Eq. 2: P̂(z) = Σ_y P̂(y, z).
    marginal_z = joint.sum(axis=0)

    # Eq. 3: P̂(y | z) = P̂(y, z) / P̂(z), and 0 for source classes that never get mass.
    conditional = np.zeros_like(joint)
    has_mass = marginal_z > 0
    conditional[:, has_mass] = joint[:, has_mass] / marginal_z[has_mass]
    return conditional, joint


def leep_bracket(joint, conditional):
    """The bounds the joint alone puts on LEEP (docs/transferability.md, "The bracket of pass 1"):
    Σ P(y,z) log P(y|z) ≤ LEEP ≤ log Σ P(y,z) P(y|z), cells with P(y,z) = 0 left out."""
    cells = joint > 0
    lower = float(np.sum(joint[cells] * np.log(conditional[cells])))
    upper = float(np.log(np.sum(joint[cells] * conditional[cells])))
    return lower, max(lower, upper)


def negative_conditional_entropy(theta, labels, num_target):
    """NCE = −H(Y | Ẑ) with Ẑ the arg-max source class (ties → lowest index)."""
    n, num_source = theta.shape
    z_hat = np.argmax(theta, axis=1)  # np.argmax returns the first maximum

    counts = np.zeros((num_target, num_source), dtype=np.int64)  # c(y, z)
    np.add.at(counts, (labels, z_hat), 1)
    counts_z = counts.sum(axis=0)  # c_z

    y_idx, z_idx = np.nonzero(counts)  # only cells with c(y, z) > 0 contribute
    c = counts[y_idx, z_idx].astype(np.float64)
    c_z = counts_z[z_idx].astype(np.float64)
    return float(np.sum((c / n) * np.log(c / c_z)))


def leep_scores(theta, labels, target_classes=None) -> dict:
    """LEEP, NCE and EEP accuracy of the source model outputs θ on the target labels.

    theta           n×Z array of softmax rows (any float dtype, upcast exactly to float64)
    labels          length-n integer array with values in [0, Y)
    target_classes  Y; defaults to max(labels) + 1, may be larger

    Returns {"leep", "leep_lower", "leep_upper", "nce", "eep_accuracy"} as Python floats and
    {"n", "source_classes", "target_classes"} as Python ints.
    """
    theta, labels, num_target = _validated_inputs(theta, labels, target_classes)
    n, num_source = theta.shape

    conditional, joint = empirical_conditional(theta, labels, num_target)

    # EEP_i = Σ_z θ_iz P̂(y_i | z): pick row y_i of P̂(y | z) for every sample.
    eep = np.sum(theta * conditional[labels], axis=1)
    # Eq. 4: T(θ, D) = (1/n) Σ_i log EEP_i.  (EEP_i > 0 for every valid row: any z with
    # θ_iz > 0 has P̂(y_i | z) ≥ θ_iz / (n P̂(z)) > 0.)
    leep = float(np.mean(np.log(eep)))

    # The EEP predicts the distribution Σ_z θ_iz P̂(y | z) over target classes y.
    eep_distribution = theta @ conditional.T  # n×Y
    eep_prediction = np.argmax(eep_distribution, axis=1)  # first maximum → lowest y
    eep_accuracy = float(np.mean(eep_prediction == labels))

    lower, upper = leep_bracket(joint, conditional)
    return {
        "leep": leep,
        "leep_lower": lower,
        "leep_upper": upper,
        "nce": negative_conditional_entropy(theta, labels, num_target),
        "eep_accuracy": eep_accuracy,
        "n": int(n),
        "source_classes": int(num_source),
        "target_classes": int(num_target),
    }


def main(argv=None) -> int:
    return reference_cli.run("Float64 reference LEEP / NCE / EEP accuracy.", "predictions", "n×Z .npy of softmax rows (float16/32/64)", leep_scores, argv)


if __name__ == "__main__":
    sys.exit(main())
