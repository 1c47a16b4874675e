"""The row rules of `leep score` and `leep produce` (Swift `RowCheck`), vectorised with NumPy.

A row is accepted when every value is finite and ≥ 0 and the row sums to 1 within the
tolerance (10⁻³ by default, the sum taken in float64), and its label lies in [0, Y). Rows are
never renormalised or clipped. Problems are reported as `leep` words them, naming the array,
the row and the problem: the first bad label over all rows first (as `leep` checks the labels
file before any row), then the first bad row.

Features (the source model's penultimate-layer activations, n×D) have one rule: every value
finite. Like θ they must be float16, float32 or float64 and are kept in their dtype. A model
without a classifier head sends features alone: its labels are checked the same way
(`validate_labels`), then its features (`validate_features`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The default largest accepted |row sum − 1| (Swift `RowCheck.defaultSumTolerance`).
DEFAULT_SUM_TOLERANCE = 1e-3
#: Labels travel as i32: without a given Y, any label below this is a class index.
LABEL_LIMIT = (1 << 31) - 1

_LOGITS_HINT = "these look like logits or unnormalised scores — apply softmax first"
# Elements checked at a time, so the temporary boolean arrays stay small on huge inputs.
_BLOCK_ELEMENTS = 1 << 20


class InvalidInput(ValueError):
    """Input that leepstream refuses, before anything of it is published.

    `array` names the argument ("predictions", "labels", or "batch 3 predictions" in a stream),
    `row` the first bad row counted from row 0 of the shard (None for a problem of the whole
    array, such as its shape), `problem` what is wrong with it."""

    def __init__(self, array: str, problem: str, row: int | None = None, batch_row: int | None = None):
        self.array = array
        self.problem = problem
        self.row = row
        self.batch_row = batch_row
        where = ""
        if row is not None:
            where = f"row {row}: " if batch_row is None else f"row {row} (row {batch_row} of the batch): "
        super().__init__(f"{array}: {where}{problem}")


def to_numpy(value: Any, name: str) -> np.ndarray:
    """`value` as a NumPy array without copying when possible: ndarrays, lists, and anything
    with `__array__` (JAX arrays, CPU torch tensors; a torch tensor that requires grad or lives
    on a GPU is detached and moved to the CPU first)."""
    if not isinstance(value, np.ndarray) and hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()  # torch, duck-typed: the package never imports it
    try:
        return np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise InvalidInput(name, f"cannot be converted to a NumPy array: {error}") from None


def _float_matrix(value: Any, name: str, columns: str, what: str) -> np.ndarray:
    """A 2-D float16, float32 or float64 array (kept in its dtype) with at least one column."""
    matrix = to_numpy(value, name)
    if matrix.ndim != 2:
        raise InvalidInput(name, f"must be 2-D (rows × {columns}), got shape {matrix.shape}")
    if matrix.dtype.kind != "f" or matrix.dtype.itemsize not in (2, 4, 8):
        hint = "; cast with .astype(np.float32)" if matrix.dtype.kind in "fiub" else ""
        raise InvalidInput(name, f"has dtype {matrix.dtype}; expected float16, float32 or float64 {what}{hint}")
    if matrix.shape[1] == 0:
        raise InvalidInput(name, f"has no columns ({columns})")
    return matrix


def as_probabilities(value: Any, name: str = "predictions") -> np.ndarray:
    """A 2-D float16, float32 or float64 array (kept in its dtype), Z ≥ 1."""
    return _float_matrix(value, name, "source classes", "probabilities")


def as_labels(value: Any, name: str = "labels") -> np.ndarray:
    """A 1-D integer array, widened to int64 (uint64 above the int64 range saturates, which
    keeps such labels out of range rather than wrapping them to small ones)."""
    labels = to_numpy(value, name)
    if labels.ndim != 1:
        raise InvalidInput(name, f"must be 1-D (one label per row), got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        hint = "; cast with .astype(np.int64)" if labels.dtype.kind in "fb" else ""
        raise InvalidInput(name, f"has dtype {labels.dtype}; expected integer labels{hint}")
    if labels.dtype == np.uint64:
        clamped: np.ndarray = np.minimum(labels, np.iinfo(np.int64).max).astype(np.int64)
        return clamped
    return labels.astype(np.int64, copy=False)


def as_features(value: Any, name: str = "features") -> np.ndarray:
    """A 2-D float16, float32 or float64 array (kept in its dtype), D ≥ 1 columns."""
    return _float_matrix(value, name, "features", "features")


def check_features(features: np.ndarray, name: str = "features", first_row: int = 0, in_batch: bool = False) -> None:
    """Every feature value finite: the first NaN or ±inf is reported with its row and column."""
    rows, width = features.shape
    block = max(1, _BLOCK_ELEMENTS // width)
    for start in range(0, rows, block):
        finite = np.isfinite(features[start:start + block])
        if finite.all():
            continue
        index, column = (int(i) for i in np.argwhere(~finite)[0])
        value = float(features[start + index, column])
        shown = "NaN" if np.isnan(value) else ("inf" if value > 0 else "-inf")
        raise InvalidInput(name, f"column {column} is {shown}; features must be finite", first_row + start + index,
                           start + index if in_batch else None)


def validate_features(
    features: Any,
    rows: int,
    *,
    name: str = "features",
    rows_name: str = "predictions",
    first_row: int = 0,
    in_batch: bool = False,
) -> np.ndarray:
    """Converts and checks features for `rows` rows of predictions (named `rows_name` in
    messages); returns them in their float dtype. Raises `InvalidInput` naming the array, the
    row and the problem."""
    phi = as_features(features, name)
    if phi.shape[0] != rows:
        raise InvalidInput(name, f"has {phi.shape[0]} rows but {rows_name} has {rows}")
    check_features(phi, name, first_row, in_batch)
    return phi


def check_pair(theta: np.ndarray, labels: np.ndarray, names: tuple[str, str] = ("predictions", "labels")) -> None:
    """One label per row."""
    if theta.shape[0] != labels.shape[0]:
        raise InvalidInput(names[0], f"has {theta.shape[0]} rows but {names[1]} has {labels.shape[0]}")


def check_labels(labels: np.ndarray, target_classes: int | None, name: str = "labels", first_row: int = 0,
                 in_batch: bool = False) -> None:
    """Every label in [0, Y) (Y = `target_classes`, or the i32 limit when not given)."""
    limit = LABEL_LIMIT if target_classes is None else target_classes
    bad = (labels < 0) | (labels >= limit)
    if not bad.any():
        return
    index = int(np.argmax(bad))
    label = int(labels[index])
    problem = (f"label {label} is negative; labels are class indices 0, 1, …" if label < 0
               else f"label {label} is outside [0, {limit})")
    raise InvalidInput(name, problem, first_row + index, index if in_batch else None)


def check_rows(theta: np.ndarray, name: str = "predictions", sum_tolerance: float = DEFAULT_SUM_TOLERANCE,
               first_row: int = 0, in_batch: bool = False) -> None:
    """Every row finite, non-negative, summing to 1 within `sum_tolerance`."""
    rows, z = theta.shape
    block = max(1, _BLOCK_ELEMENTS // z)
    for start in range(0, rows, block):
        part = theta[start:start + block]
        not_finite = ~np.asarray(np.isfinite(part).all(axis=1))
        negative = np.asarray((part < 0).any(axis=1))
        sums = part.sum(axis=1, dtype=np.float64)
        not_normalised = ~np.asarray(np.abs(sums - 1.0) <= sum_tolerance)
        bad = not_finite | negative | not_normalised
        if not bad.any():
            continue
        index = int(np.argmax(bad))
        row = part[index]
        if not_finite[index]:
            column = int(np.argmax(~np.isfinite(row)))
            problem = f"column {column} is {float(row[column])}; probabilities must be finite"
        elif negative[index]:
            column = int(np.argmax(row < 0))
            problem = f"column {column} is {float(row[column])}, a negative probability; {_LOGITS_HINT}"
        else:
            total = float(sums[index])
            problem = f"the row sums to {total}, not 1 (tolerance {sum_tolerance})"
            if abs(total - 1) > 0.1:
                problem += f"; {_LOGITS_HINT}"
        raise InvalidInput(name, problem, first_row + start + index, start + index if in_batch else None)


def validate_labels(
    labels: Any,
    *,
    target_classes: int | None = None,
    name: str = "labels",
    first_row: int = 0,
    in_batch: bool = False,
) -> np.ndarray:
    """Converts and checks labels on their own (for features alone: no predictions); returns
    them as int64. Raises `InvalidInput` naming the array, the row and the problem."""
    y = as_labels(labels, name)
    if target_classes is not None and target_classes < 1:
        raise InvalidInput("target_classes", f"must be at least 1, got {target_classes}")
    check_labels(y, target_classes, name, first_row, in_batch)
    return y


def validate(
    predictions: Any,
    labels: Any,
    *,
    target_classes: int | None = None,
    sum_tolerance: float = DEFAULT_SUM_TOLERANCE,
    names: tuple[str, str] = ("predictions", "labels"),
    first_row: int = 0,
    in_batch: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Converts and checks a predictions/labels pair; returns (θ in its float dtype, labels as
    int64). Raises `InvalidInput` naming the array, the row and the problem. `first_row` is
    the shard row of the pair's row 0 (for messages)."""
    theta = as_probabilities(predictions, names[0])
    y = as_labels(labels, names[1])
    check_pair(theta, y, names)
    if target_classes is not None and target_classes < 1:
        raise InvalidInput("target_classes", f"must be at least 1, got {target_classes}")
    check_labels(y, target_classes, names[1], first_row, in_batch)
    check_rows(theta, names[0], sum_tolerance, first_row, in_batch)
    return theta, y
