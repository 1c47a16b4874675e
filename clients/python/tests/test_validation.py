"""Each kind of bad input is refused with a message naming the array, the row and the problem,
worded as `leep score` words it. No broker needed."""

from __future__ import annotations

import numpy as np
import pytest

from leepstream import InvalidInput, validate, validate_features, validate_labels
from leepstream.validation import check_rows


def good(rows: int = 6, z: int = 4, dtype=np.float32):
    theta = np.full((rows, z), 1 / z, dtype=dtype)
    labels = np.arange(rows) % 3
    return theta, labels


def refused(theta, labels, **options) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        validate(theta, labels, **options)
    return caught.value


def test_good_input_passes_in_its_dtype():
    for dtype in (np.float16, np.float32, np.float64):
        theta, labels = validate(*good(dtype=dtype))
        assert theta.dtype == dtype and labels.dtype == np.int64


def test_nan():
    theta, labels = good()
    theta[3, 2] = np.nan
    error = refused(theta, labels)
    assert str(error) == "predictions: row 3: column 2 is nan; probabilities must be finite"
    assert (error.array, error.row) == ("predictions", 3)


def test_infinity():
    theta, labels = good(dtype=np.float16)
    theta[1, 0] = np.inf
    assert str(refused(theta, labels)) == "predictions: row 1: column 0 is inf; probabilities must be finite"


def test_negative():
    theta, labels = good(dtype=np.float64)
    theta[4] = [0.75, -0.25, 0.25, 0.25]
    assert str(refused(theta, labels)) == ("predictions: row 4: column 1 is -0.25, a negative probability; "
                                           "these look like logits or unnormalised scores — apply softmax first")


def test_not_normalised():
    theta, labels = good(dtype=np.float64)
    theta[2, 0] += 0.01
    assert str(refused(theta, labels)) == "predictions: row 2: the row sums to 1.01, not 1 (tolerance 0.001)"
    theta[2, 0] = 3.0
    assert "the row sums to 3.75, not 1 (tolerance 0.001); these look like logits" in str(refused(theta, labels))
    # Within the tolerance (and a looser one) passes, never renormalised.
    theta[2, 0] = 0.25 + 0.0009
    assert validate(theta, labels)[0][2, 0] == 0.25 + 0.0009
    theta[2, 0] = 0.25 + 0.009
    validate(theta, labels, sum_tolerance=0.01)


def test_logits_are_refused():
    logits = np.random.default_rng(0).normal(size=(5, 10)).astype(np.float32)
    assert "apply softmax first" in str(refused(logits, np.zeros(5, int)))


def test_label_out_of_range_and_negative():
    theta, labels = good()
    labels[5] = 3
    error = refused(theta, labels, target_classes=3)
    assert str(error) == "labels: row 5: label 3 is outside [0, 3)"
    assert (error.array, error.row) == ("labels", 5)
    labels[1] = -1
    assert str(refused(theta, labels)) == "labels: row 1: label -1 is negative; labels are class indices 0, 1, …"
    labels[1] = 1 << 31
    assert str(refused(theta, labels)) == f"labels: row 1: label {1 << 31} is outside [0, 2147483647)"
    too_big = np.array([0, np.iinfo(np.uint64).max, 0, 0, 0, 0], dtype=np.uint64)
    assert "label 9223372036854775807 is outside" in str(refused(theta, too_big))


def test_labels_are_checked_before_rows_and_the_first_bad_row_is_named():
    theta, labels = good()
    theta[0, 0] = np.nan
    theta[4, 0] = np.nan
    labels[5] = 7
    assert refused(theta, labels, target_classes=3).array == "labels"
    assert refused(theta, labels).row == 0


def test_shape_mismatch():
    theta, labels = good()
    assert str(refused(theta, labels[:5])) == "predictions: has 6 rows but labels has 5"


def test_not_two_dimensional():
    theta, labels = good()
    assert str(refused(theta.reshape(-1), labels)) == ("predictions: must be 2-D (rows × source classes), "
                                                       "got shape (24,)")
    assert str(refused(theta.reshape(2, 3, 4), labels)).startswith("predictions: must be 2-D")
    assert str(refused(theta, labels.reshape(2, 3))) == ("labels: must be 1-D (one label per row), "
                                                         "got shape (2, 3)")
    assert str(refused(np.zeros((3, 0), np.float32), np.zeros(3, int))) == "predictions: has no columns (source classes)"


def test_wrong_dtypes():
    theta, labels = good()
    assert "predictions: has dtype int64; expected float16, float32 or float64" in str(
        refused(np.ones((6, 1), np.int64), labels))
    assert "labels: has dtype float32; expected integer labels; cast with .astype(np.int64)" == str(
        refused(theta, labels.astype(np.float32)))
    assert "has dtype <U1" in str(refused(theta, np.array(list("abcdef"))))


def test_batch_names_and_rows():
    theta, labels = good()
    theta[2, 1] = -0.5
    error = refused(theta, labels, names=("batch 3 predictions", "batch 3 labels"), first_row=1000, in_batch=True)
    assert str(error).startswith("batch 3 predictions: row 1002 (row 2 of the batch): column 1 is -0.5")
    assert (error.row, error.batch_row) == (1002, 2)


def test_rows_beyond_the_first_block_are_named_correctly():
    theta = np.full((3000, 1000), 1e-3, np.float32)
    theta[2345, 999] = 0.5
    with pytest.raises(InvalidInput, match="row 2345: the row sums to"):
        check_rows(theta)


def test_array_likes():
    class ArrayLike:  # anything with __array__ (JAX, CuPy on host, ...)
        def __init__(self, value):
            self.value = value

        def __array__(self, dtype=None, copy=None):
            return np.asarray(self.value, dtype=dtype)

    class FakeTensor(ArrayLike):  # torch-like: detached and moved to the CPU first
        def __init__(self, value, on_cpu=False):
            super().__init__(value)
            self.on_cpu = on_cpu

        def detach(self):
            return self

        def cpu(self):
            return FakeTensor(self.value, on_cpu=True)

        def __array__(self, dtype=None, copy=None):
            if not self.on_cpu:
                raise TypeError("can't convert cuda:0 device type tensor to numpy")
            return super().__array__(dtype, copy)

    theta, labels = good(dtype=np.float16)
    for wrap in (ArrayLike, FakeTensor):
        converted, y = validate(wrap(theta), wrap(labels))
        assert converted.dtype == np.float16 and (y == labels).all()
    converted, y = validate(theta.tolist(), labels.tolist())
    assert converted.dtype == np.float64

    class Broken:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("boom")

    assert str(refused(Broken(), labels)) == "predictions: cannot be converted to a NumPy array: boom"


# -- features -----------------------------------------------------------------------------------


def features_refused(features, rows: int = 6, **options) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        validate_features(features, rows, **options)
    return caught.value


def test_good_features_pass_in_their_dtype():
    for dtype in (np.float16, np.float32, np.float64):
        # Activations: any sign and size, no row rule.
        phi = np.random.default_rng(0).normal(0, 100, size=(6, 5)).astype(dtype)
        checked = validate_features(phi, 6)
        assert checked.dtype == dtype and checked is phi


def test_features_nan_and_infinities_name_row_and_column():
    phi = np.zeros((6, 5), np.float32)
    phi[4, 3] = np.nan
    error = features_refused(phi)
    assert str(error) == "features: row 4: column 3 is NaN; features must be finite"
    assert (error.array, error.row) == ("features", 4)
    phi[4, 3] = 0
    phi[2, 0] = np.inf
    assert str(features_refused(phi)) == "features: row 2: column 0 is inf; features must be finite"
    phi[2, 0] = -np.inf
    assert str(features_refused(phi.astype(np.float16))) == "features: row 2: column 0 is -inf; features must be finite"
    # The first bad value in row order: row 1 column 4 before row 2 column 0.
    phi[1, 4] = np.nan
    assert str(features_refused(phi)).startswith("features: row 1: column 4 is NaN")


def test_features_in_a_batch_and_beyond_the_first_block():
    phi = np.ones((3000, 1000), np.float32)
    phi[2345, 999] = np.inf
    error = features_refused(phi, rows=3000, name="batch 2 features", first_row=10_000, in_batch=True)
    assert str(error) == "batch 2 features: row 12345 (row 2345 of the batch): column 999 is inf; features must be finite"
    assert (error.row, error.batch_row) == (12_345, 2345)


def test_features_shape_and_dtype():
    assert str(features_refused(np.zeros((5, 3), np.float32))) == "features: has 5 rows but predictions has 6"
    assert str(features_refused(np.zeros((5, 3), np.float32), rows_name="batch 1 predictions")) == (
        "features: has 5 rows but batch 1 predictions has 6")
    assert str(features_refused(np.zeros(6, np.float32))) == "features: must be 2-D (rows × features), got shape (6,)"
    assert str(features_refused(np.zeros((6, 0), np.float32))) == "features: has no columns (features)"
    assert str(features_refused(np.zeros((6, 2), np.int32))) == (
        "features: has dtype int32; expected float16, float32 or float64 features; cast with .astype(np.float32)")
    assert "has dtype complex128" in str(features_refused(np.zeros((6, 2), np.complex128)))
    # Lists convert as NumPy converts them (float64).
    assert validate_features([[1.0, 2.0]] * 6, 6).dtype == np.float64


# -- labels alone (for features alone: no predictions) ------------------------------------------


def test_labels_alone():
    assert validate_labels(np.array([0, 2, 1], np.uint8)).dtype == np.int64
    assert validate_labels([0, 2, 1], target_classes=3).tolist() == [0, 2, 1]
    with pytest.raises(InvalidInput) as caught:
        validate_labels([0, 2, 3, 1], target_classes=3)
    assert str(caught.value) == "labels: row 2: label 3 is outside [0, 3)" and caught.value.row == 2
    with pytest.raises(InvalidInput) as caught:
        validate_labels([0, -1], name="batch 4 labels", first_row=100, in_batch=True)
    assert str(caught.value) == ("batch 4 labels: row 101 (row 1 of the batch): label -1 is negative; labels are class "
                                 "indices 0, 1, …")
    with pytest.raises(InvalidInput, match="labels: must be 1-D"):
        validate_labels(np.zeros((2, 2), int))
    with pytest.raises(InvalidInput, match="target_classes: must be at least 1, got 0"):
        validate_labels([0], target_classes=0)
