"""The encoders against the golden fixtures of the Swift codec (byte for byte), round trips
through the decoders, and what both refuse. No broker needed."""

from __future__ import annotations

import pathlib
import struct

import numpy as np
import pytest

from leepstream import wire
from leepstream.wire import ChunkLocation, WireError

FIXTURES = pathlib.Path(__file__).resolve().parents[3] / "Tests" / "WireFormatTests" / "Fixtures"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# The field values of Tests/WireFormatTests/Fixtures/make_fixtures.py (repeated here on purpose:
# this package has an encoder of its own and must reproduce the fixtures from the same values).
GOLDEN_CHUNKS = {
    "chunk_f32.bin": dict(run="r1", model="m", dataset="d", shard=0, shard_count=1, first_row=0, target_classes=2,
                          labels=[0, 1], probabilities=np.array([[0.5, 0.25, 0.25], [0.125, 0.625, 0.25]], np.float32)),
    "chunk_f64.bin": dict(run="r1", model="model-b", dataset="d", shard=1, shard_count=2, first_row=2,
                          target_classes=3, labels=[2, 0],
                          probabilities=np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]], np.float64)),
    "chunk_f16.bin": dict(run="r1", model="m", dataset="d", shard=0, shard_count=1, first_row=4, target_classes=2,
                          labels=[1, 1, 0],
                          probabilities=np.array([[0.25, 0.5, 0.25], [1.0, 0.0, 0.0], [0.125, 0.375, 0.5]],
                                                 np.float16)),
}
GOLDEN_MANIFEST = dict(run="r1", model="vit-b/16", dataset="café", shard=1, shard_count=2, source_classes=3,
                       target_classes=3, shard_rows=5, total_chunks=2, part_index=0, part_count=1,
                       chunks=[(0, 3, 2, 17), (3, 2, 5, 0x0102030405)], eep_accuracy=True)
# Version 2: chunks with features, a manifest with the feature width.
GOLDEN_FEATURE_CHUNKS = {
    "chunk_features_f32.bin": dict(
        run="r1", model="m", dataset="d", shard=0, shard_count=1, first_row=0, target_classes=2, labels=[0, 1, 1],
        probabilities=np.array([[0.5, 0.25, 0.25], [0.125, 0.625, 0.25], [0, 0, 1]], np.float16),
        features=np.array([[1.5, -2, 0, 3.25], [0.5, 0.25, -0.125, 8], [-1, 2, 4, -0.5]], np.float32)),
    "chunk_features_f16.bin": dict(
        run="r1", model="model-b", dataset="d", shard=1, shard_count=2, first_row=2, target_classes=3, labels=[2, 0],
        probabilities=np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]], np.float64),
        features=np.array([[0.5, -1, 2], [0, 1.5, -0.25]], np.float16)),
}
# Features alone (a model without a classifier head): version-3 chunks, a version-2 manifest with Z = 0.
GOLDEN_FEATURES_ONLY_CHUNKS = {
    "chunk_features_only_f32.bin": dict(
        run="r1", model="m", dataset="d", shard=0, shard_count=1, first_row=0, target_classes=2, labels=[0, 1, 1],
        features=np.array([[1.5, -2, 0, 3.25], [0.5, 0.25, -0.125, 8], [-1, 2, 4, -0.5]], np.float32)),
    "chunk_features_only_f16.bin": dict(
        run="r1", model="model-b", dataset="d", shard=1, shard_count=2, first_row=2, target_classes=3, labels=[2, 0],
        features=np.array([[0.5, -1, 2], [0, 1.5, -0.25]], np.float16)),
}
GOLDEN_FEATURES_ONLY_MANIFEST = dict(run="r1", model="clip-vit-b/16", dataset="café", shard=0, shard_count=1,
                                     source_classes=0, target_classes=37, shard_rows=300, total_chunks=2, part_index=0,
                                     part_count=1, chunks=[(0, 256, 1, 4), (256, 44, 6, 1 << 40)], feature_width=768)
GOLDEN_FEATURE_MANIFEST = dict(run="r1", model="vit-b/16", dataset="café", shard=0, shard_count=1,
                               source_classes=1000, target_classes=37, shard_rows=300, total_chunks=2, part_index=0,
                               part_count=1, chunks=[(0, 248, 3, 9), (248, 52, 0, 1 << 40)], feature_width=2048)


def chunk(spec: dict) -> bytes:
    spec = dict(spec)
    return wire.encode_chunk(spec.pop("run"), spec.pop("model"), spec.pop("dataset"), **spec)


@pytest.mark.parametrize("name", sorted(GOLDEN_CHUNKS))
def test_chunk_matches_golden_fixture(name):
    assert chunk(GOLDEN_CHUNKS[name]) == fixture(name)


@pytest.mark.parametrize("name", sorted(GOLDEN_FEATURE_CHUNKS))
def test_chunk_with_features_matches_golden_fixture(name):
    assert chunk(GOLDEN_FEATURE_CHUNKS[name]) == fixture(name)
    assert fixture(name)[4] == 2


@pytest.mark.parametrize("name", sorted(GOLDEN_FEATURE_CHUNKS))
def test_golden_chunks_with_features_decode(name):
    spec = GOLDEN_FEATURE_CHUNKS[name]
    frame = wire.decode_chunk(fixture(name))
    assert frame.labels.tolist() == spec["labels"] and frame.first_row == spec["first_row"]
    assert frame.probabilities.dtype == spec["probabilities"].dtype
    np.testing.assert_array_equal(frame.probabilities, spec["probabilities"])
    assert frame.features is not None and frame.features.dtype == spec["features"].dtype
    assert frame.feature_width == spec["features"].shape[1]
    np.testing.assert_array_equal(frame.features, spec["features"])


def test_manifest_with_features_matches_golden_fixture():
    spec = dict(GOLDEN_FEATURE_MANIFEST)
    data = wire.encode_manifest(spec.pop("run"), spec.pop("model"), spec.pop("dataset"), **spec)
    assert data == fixture("manifest_features.bin") and data[4] == 2
    frame = wire.decode_manifest(data)
    assert frame.feature_width == 2048 and not frame.eep_accuracy and frame.target_classes == 37
    assert frame.chunks == (ChunkLocation(0, 248, 3, 9), ChunkLocation(248, 52, 0, 1 << 40))
    # Without features the same manifest is version 1, 4 bytes shorter.
    spec = dict(GOLDEN_FEATURE_MANIFEST, feature_width=0)
    plain = wire.encode_manifest(spec.pop("run"), spec.pop("model"), spec.pop("dataset"), **spec)
    assert plain[4] == 1 and len(plain) == len(data) - 4 and wire.decode_manifest(plain).feature_width == 0


@pytest.mark.parametrize("name", sorted(GOLDEN_FEATURES_ONLY_CHUNKS))
def test_chunk_of_features_alone_matches_golden_fixture_and_decodes(name):
    spec = GOLDEN_FEATURES_ONLY_CHUNKS[name]
    assert chunk(spec) == fixture(name) and fixture(name)[4] == 3
    frame = wire.decode_chunk(fixture(name))
    assert (frame.run, frame.model, frame.dataset) == (spec["run"], spec["model"], spec["dataset"])
    assert (frame.shard, frame.shard_count, frame.first_row, frame.target_classes) == (
        spec["shard"], spec["shard_count"], spec["first_row"], spec["target_classes"])
    assert frame.labels.tolist() == spec["labels"] and frame.row_count == len(spec["labels"])
    assert frame.probabilities is None and frame.source_classes == 0
    assert frame.features is not None and frame.features.dtype == spec["features"].dtype
    assert frame.feature_width == spec["features"].shape[1]
    np.testing.assert_array_equal(frame.features, spec["features"])


def test_manifest_of_features_alone_matches_golden_fixture():
    spec = dict(GOLDEN_FEATURES_ONLY_MANIFEST)
    data = wire.encode_manifest(spec.pop("run"), spec.pop("model"), spec.pop("dataset"), **spec)
    assert data == fixture("manifest_features_only.bin") and data[4] == 2
    frame = wire.decode_manifest(data)
    assert frame.source_classes == 0 and frame.feature_width == 768 and frame.target_classes == 37
    assert frame.model == "clip-vit-b/16" and frame.shard_rows == 300 and not frame.eep_accuracy
    assert frame.chunks == (ChunkLocation(0, 256, 1, 4), ChunkLocation(256, 44, 6, 1 << 40))


@pytest.mark.parametrize("feature_dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("rows,d", [(1, 1), (2, 3), (3, 5), (8, 64), (5, 7)])
def test_chunk_of_features_alone_round_trip(feature_dtype, rows, d):
    rng = np.random.default_rng(rows * 100 + d)
    phi = rng.normal(0, 10, size=(rows, d)).astype(feature_dtype)
    labels = rng.integers(0, 4, size=rows)
    data = wire.encode_chunk("run-é", "dinov2", "", shard=1, shard_count=2, first_row=7, target_classes=4,
                             labels=labels, features=phi)
    frame = wire.decode_chunk(data)
    assert data[4] == 3 and frame.probabilities is None and frame.source_classes == 0 and frame.first_row == 7
    np.testing.assert_array_equal(frame.labels, labels)
    np.testing.assert_array_equal(frame.features, phi)
    # The documented layout: 33 fixed bytes (no dtype), pad8, labels, pad8, features.
    s = 8 + 2 + len("run-é".encode()) + 2 + 6 + 2
    a = -(-(s + 33) // 8) * 8
    c = -(-(a + 4 * rows) // 8) * 8
    assert len(data) == c + rows * d * np.dtype(feature_dtype).itemsize


def test_rows_per_chunk_of_features_alone():
    # Z = 0: ⌊(limit − 4,096) ÷ (D·fsize + 4)⌋, whatever θ's dtype would have been.
    assert wire.rows_per_chunk(0, None, feature_width=768, feature_dtype=np.float32) == 995_904 // 3076
    assert wire.rows_per_chunk(0, np.float64, feature_width=768, feature_dtype=np.float32) == 995_904 // 3076
    with pytest.raises(WireError, match=r"one row of 248976 × 4-byte features does not fit"):
        wire.rows_per_chunk(0, None, feature_width=248_976, feature_dtype=np.float32)


def test_encoding_features_alone_refuses():
    with pytest.raises(WireError, match="probabilities, features or both; got neither"):
        wire.encode_chunk("r", "m", "d", shard=0, shard_count=1, first_row=0, target_classes=2, labels=[0, 1])
    with pytest.raises(WireError, match=r"one row per label \(2 × D\)"):
        wire.encode_chunk("r", "m", "d", shard=0, shard_count=1, first_row=0, target_classes=2, labels=[0, 1],
                          features=np.zeros((3, 2), np.float32))
    with pytest.raises(WireError, match="row_count = 0"):
        wire.encode_chunk("r", "m", "d", shard=0, shard_count=1, first_row=0, target_classes=2, labels=np.zeros(0, int),
                          features=np.zeros((0, 2), np.float32))
    # A manifest of Z = 0 declares the features it has instead.
    with pytest.raises(WireError, match=r"source_classes = 0 is outside \[1,"):
        wire.encode_manifest("r", "m", "d", shard=0, shard_count=1, source_classes=0, target_classes=2, shard_rows=0,
                             chunks=[])


@pytest.mark.parametrize("mutate,message", [
    (lambda d: corrupt(d, 38, struct.pack("<I", 3)), "source_classes: 3 in a version-3 chunk, which carries features alone"),
    (lambda d: corrupt(d, 4, b"\x02"), "source_classes: 0 in a version-2 chunk: a chunk of features alone is version 3"),
    (lambda d: corrupt(d, 4, b"\x01"), "source_classes: 0 without features"),
    (lambda d: corrupt(d, 46, struct.pack("<I", 0)), "feature_width: must be at least 1"),
    (lambda d: corrupt(d, 50, b"\x07"), "feature_dtype: unknown code 7"),
    (lambda d: corrupt(d, 51, b"\x01"), "padding bytes are not zero"),  # after feature_dtype
    (lambda d: corrupt(d, 68, b"\x01"), "padding bytes are not zero"),  # after the labels
    (lambda d: d + b"\x00", "features: 3 rows × 4 features × 4 bytes do not match the 49 bytes left"),
    (lambda d: d[:-1], "features: 3 rows × 4 features × 4 bytes do not match the 47 bytes left"),
    (lambda d: corrupt(d, 4, b"\x04"), "unsupported frame version 4"),
])
def test_decode_chunk_of_features_alone_refuses(mutate, message):
    with pytest.raises(WireError, match=message):
        wire.decode_chunk(mutate(fixture("chunk_features_only_f32.bin")))


def test_decode_manifest_of_features_alone_refuses_version_1():
    # Version 1 has no feature width, so Z = 0 there carries nothing.
    with pytest.raises(WireError, match="source_classes: 0 without features"):
        wire.decode_manifest(corrupt(fixture("manifest_features_only.bin"), 4, b"\x01"))
    with pytest.raises(WireError, match="source_classes: 0 without features"):
        wire.decode_manifest(corrupt(fixture("manifest.bin"), 37, struct.pack("<I", 0)))


def test_a_chunk_without_features_is_still_version_1():
    assert wire.decode_chunk(fixture("chunk_f32.bin")).features is None
    assert wire.decode_chunk(fixture("chunk_f32.bin")).feature_width == 0
    assert chunk(dict(GOLDEN_CHUNKS["chunk_f32.bin"], features=None)) == fixture("chunk_f32.bin")


@pytest.mark.parametrize("theta_dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("feature_dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("rows,z,d", [(1, 1, 1), (3, 2, 5), (5, 7, 3), (8, 8, 64), (2, 33, 7)])
def test_chunk_with_features_round_trip(theta_dtype, feature_dtype, rows, z, d):
    rng = np.random.default_rng(rows * 100 + z + d)
    theta = rng.dirichlet(np.ones(z), size=rows).astype(theta_dtype)
    phi = rng.normal(0, 10, size=(rows, d)).astype(feature_dtype)
    labels = rng.integers(0, 4, size=rows)
    data = wire.encode_chunk("run-é", "model", "", shard=0, shard_count=1, first_row=7, target_classes=4,
                             labels=labels, probabilities=theta, features=phi)
    frame = wire.decode_chunk(data)
    np.testing.assert_array_equal(frame.probabilities, theta)
    np.testing.assert_array_equal(frame.features, phi)
    assert frame.features.dtype == np.dtype(feature_dtype)
    # The documented layout: 34 fixed bytes, pad8, labels, pad8, θ, pad8, features.
    s = 8 + 2 + len("run-é".encode()) + 2 + 5 + 2
    a = -(-(s + 34) // 8) * 8
    b = -(-(a + 4 * rows) // 8) * 8
    c = -(-(b + rows * z * np.dtype(theta_dtype).itemsize) // 8) * 8
    assert len(data) == c + rows * d * np.dtype(feature_dtype).itemsize


def test_feature_value_count_and_limits():
    assert wire.feature_value_count(2, 2) == 14
    assert wire.feature_value_count(1000, 4096) == 12_495_849
    wire.check_feature_width(4096, 30_710)
    with pytest.raises(WireError, match="beyond the limit of 134217728"):
        wire.check_feature_width(4096, 30_711)
    with pytest.raises(WireError, match=r"feature_width = 8193 is outside \[1, 8192\]"):
        wire.check_feature_width(8193, 1)


def test_manifest_matches_golden_fixture():
    spec = dict(GOLDEN_MANIFEST)
    assert wire.encode_manifest(spec.pop("run"), spec.pop("model"), spec.pop("dataset"), **spec) == fixture("manifest.bin")


def test_worked_example_layout():
    data = fixture("chunk_f32.bin")
    assert len(data) == 80 and data[:8] == b"LPST\x01\x01\x00\x00"
    assert data[0x2E] == 2 and data[0x2F] == 0  # dtype f32, one byte of padding up to 48


@pytest.mark.parametrize("name", sorted(GOLDEN_CHUNKS))
def test_golden_chunks_decode(name):
    spec = GOLDEN_CHUNKS[name]
    frame = wire.decode_chunk(fixture(name))
    assert (frame.run, frame.model, frame.dataset) == (spec["run"], spec["model"], spec["dataset"])
    assert (frame.shard, frame.shard_count, frame.first_row, frame.target_classes) == (
        spec["shard"], spec["shard_count"], spec["first_row"], spec["target_classes"])
    assert frame.labels.tolist() == spec["labels"]
    assert frame.probabilities.dtype == spec["probabilities"].dtype
    np.testing.assert_array_equal(frame.probabilities, spec["probabilities"])


def test_golden_manifest_decodes():
    frame = wire.decode_manifest(fixture("manifest.bin"))
    assert frame.dataset == "café" and frame.model == "vit-b/16" and frame.eep_accuracy
    assert frame.chunks == (ChunkLocation(0, 3, 2, 17), ChunkLocation(3, 2, 5, 0x0102030405))
    assert (frame.shard, frame.shard_count, frame.source_classes, frame.target_classes, frame.shard_rows,
            frame.total_chunks, frame.part_index, frame.part_count) == (1, 2, 3, 3, 5, 2, 0, 1)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("rows,z", [(1, 1), (3, 2), (5, 7), (8, 8), (2, 33)])
def test_chunk_round_trip(dtype, rows, z):
    rng = np.random.default_rng(rows * 100 + z)
    theta = rng.dirichlet(np.ones(z), size=rows).astype(dtype)
    labels = rng.integers(0, 4, size=rows)
    data = wire.encode_chunk("run-é", "model", "", shard=2, shard_count=3, first_row=10**12, target_classes=4,
                             labels=labels, probabilities=theta)
    frame = wire.decode_chunk(data)
    assert frame.probabilities.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(frame.probabilities, theta)
    np.testing.assert_array_equal(frame.labels, labels)
    assert (frame.run, frame.dataset, frame.shard, frame.first_row, frame.row_count, frame.source_classes) == (
        "run-é", "", 2, 10**12, rows, z)
    # Both arrays start on a multiple of 8 from the frame's first byte.
    s = 8 + 2 + len("run-é".encode()) + 2 + 5 + 2
    a = -(-(s + 29) // 8) * 8
    b = -(-(a + 4 * rows) // 8) * 8
    assert len(data) == b + rows * z * np.dtype(dtype).itemsize


def test_byte_order_and_layout_of_the_input_do_not_matter():
    spec = GOLDEN_CHUNKS["chunk_f64.bin"]
    swapped = spec["probabilities"].astype(">f8")
    fortran = np.asfortranarray(spec["probabilities"])
    for theta in (swapped, fortran, spec["probabilities"][:, ::-1][:, ::-1]):
        assert chunk(dict(spec, probabilities=theta, labels=np.array(spec["labels"], dtype=">i8"))) == fixture(
            "chunk_f64.bin")


def test_empty_manifest():
    data = wire.encode_manifest("r", "m", "d", shard=0, shard_count=2, source_classes=5, target_classes=1,
                                shard_rows=0, chunks=[])
    assert len(data) == 8 + 3 * 3 + 41
    frame = wire.decode_manifest(data)
    assert frame.chunks == () and frame.total_chunks == 0 and frame.part_count == 1 and not frame.eep_accuracy
    assert data[-5] == 0  # flags
    assert wire.encode_manifest_parts("r", "m", "d", shard=0, shard_count=2, source_classes=5, target_classes=1,
                                      shard_rows=0, chunks=[]) == [data]


def test_manifest_parts_split_like_swift():
    located = [ChunkLocation(i * 10, 10, i % 8, i) for i in range(5)]
    limit = wire.HEADROOM + 2 * wire.MANIFEST_ENTRY_BYTES  # two entries a part
    assert wire.manifest_entries_per_part(limit) == 2
    assert wire.manifest_entries_per_part() == 41_496
    parts = [wire.decode_manifest(p) for p in wire.encode_manifest_parts(
        "r", "m", "d", shard=0, shard_count=1, source_classes=3, target_classes=2, shard_rows=50, chunks=located,
        eep_accuracy=True, max_message_bytes=limit)]
    assert [p.part_index for p in parts] == [0, 1, 2]
    assert {(p.part_count, p.total_chunks, p.eep_accuracy) for p in parts} == {(3, 5, True)}
    assert [c for p in parts for c in p.chunks] == located


def test_rows_per_chunk_with_features():
    # max(1, ⌊(limit − 4,096) ÷ (Z·size + D·fsize + 4)⌋)
    assert wire.rows_per_chunk(1000, np.float32, feature_width=4096, feature_dtype=np.float32) == 995_904 // 20_388 == 48
    assert wire.rows_per_chunk(1000, np.float16, feature_width=768, feature_dtype=np.float16) == 995_904 // 3540
    assert wire.rows_per_chunk(10, np.float64, feature_width=2048, feature_dtype=np.float64, requested=5) == 5
    assert wire.rows_per_chunk(3, np.float32, feature_width=0, feature_dtype=np.float64) == wire.rows_per_chunk(3, np.float32)
    with pytest.raises(WireError, match="and 248975 × 4-byte features does not fit"):
        wire.rows_per_chunk(1, np.float32, feature_width=248_975, feature_dtype=np.float32)


def test_a_full_chunk_with_features_fits_the_message_limit():
    z, d = 1000, 4096
    rows = wire.rows_per_chunk(z, np.float32, feature_width=d, feature_dtype=np.float32)
    data = wire.encode_chunk("x" * 256, "m" * 256, "d" * 256, shard=0, shard_count=1, first_row=0, target_classes=1,
                             labels=np.zeros(rows, int), probabilities=np.full((rows, z), 1 / z, np.float32),
                             features=np.ones((rows, d), np.float32))
    assert len(data) <= wire.DEFAULT_MAX_MESSAGE_BYTES


def test_rows_per_chunk_like_leep_produce():
    assert wire.rows_per_chunk(1000, np.float32) == (1_000_000 - 4096) // 4004 == 248
    assert wire.rows_per_chunk(21_843, np.float32) == 11
    assert wire.rows_per_chunk(3, np.float16) == (1_000_000 - 4096) // 10
    assert wire.rows_per_chunk(1000, np.float64, requested=7) == 7
    assert wire.rows_per_chunk(248_975, np.float32) == 1
    with pytest.raises(WireError, match="does not fit"):
        wire.rows_per_chunk(248_976, np.float32)
    with pytest.raises(WireError, match="at least 1"):
        wire.rows_per_chunk(3, np.float32, requested=0)


def test_a_full_chunk_fits_the_message_limit():
    z = 1000
    rows = wire.rows_per_chunk(z, np.float64)
    theta = np.full((rows, z), 1 / z)
    data = wire.encode_chunk("x" * 256, "m" * 256, "d" * 256, shard=0, shard_count=1, first_row=0,
                             target_classes=1, labels=np.zeros(rows, int), probabilities=theta)
    assert len(data) <= wire.DEFAULT_MAX_MESSAGE_BYTES


def good_chunk(**changes):
    fields = dict(shard=0, shard_count=1, first_row=0, target_classes=2, labels=[0, 1],
                  probabilities=np.array([[0.5, 0.5], [1.0, 0.0]], np.float32))
    fields.update(changes)
    return wire.encode_chunk(fields.pop("run", "r"), "m", "d", **fields)


@pytest.mark.parametrize("changes,message", [
    (dict(run=""), "run: empty"),
    (dict(shard=1), "shard: 1 is not below shard_count 1"),
    (dict(shard_count=0), "shard_count = 0"),
    (dict(target_classes=0), "target_classes = 0"),
    (dict(labels=np.zeros(0, int), probabilities=np.zeros((0, 2), np.float32)), "row_count = 0"),
    (dict(probabilities=np.zeros((2, 0), np.float32)), "source_classes = 0"),
    (dict(probabilities=np.zeros((2, 2), np.int32)), "dtype int32"),
    (dict(probabilities=np.zeros((2, 2), np.longdouble)), "float16, float32 or float64"),
    (dict(probabilities=np.zeros(4, np.float32)), "2-D"),
    (dict(labels=[0]), "one label per row"),
    (dict(labels=[0.0, 1.0]), "integers"),
    (dict(labels=[0, 1 << 31]), "i32"),
    (dict(first_row=-1), "first_row"),
    (dict(features=np.zeros((3, 2), np.float32)), r"one row per label \(2 × D\)"),
    (dict(features=np.zeros(2, np.float32)), "features must be 2-D"),
    (dict(features=np.zeros((2, 2), np.int64)), "features have dtype int64"),
    (dict(features=np.zeros((2, 0), np.float32)), r"feature_width = 0 is outside \[1, 8192\]"),
    (dict(features=np.zeros((2, 8193), np.float32)), "feature_width = 8193"),
])
def test_encode_chunk_refuses(changes, message):
    with pytest.raises(WireError, match=message if "\\" in message else message.replace("(", r"\(")):
        good_chunk(**changes)


def test_encode_strings_and_manifest_refuse():
    with pytest.raises(WireError, match="at most 65535"):
        wire.encode_string("x" * 65_536, "model")
    base = dict(shard=0, shard_count=1, source_classes=3, target_classes=2, shard_rows=1, chunks=[(0, 1, 0, 0)])
    for changes, message in [
        (dict(part_index=1), "part_index: 1 is not below part_count 1"),
        (dict(source_classes=0), "source_classes = 0"),
        (dict(chunks=[(0, 0, 0, 0)]), "out of range"),
        (dict(chunks=[(0, 1, 1 << 31, 0)]), "out of range"),
        (dict(shard=3, shard_count=2), "shard: 3"),
    ]:
        with pytest.raises(WireError, match=message):
            wire.encode_manifest("r", "m", "d", **dict(base, **changes))


def corrupt(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value):]


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d[:5], "truncated at header: needs 8 bytes, 5 left"),
    (lambda d: b"XPST" + d[4:], "bad magic"),
    (lambda d: corrupt(d, 4, b"\x03"), "source_classes: 3 in a version-3 chunk, which carries features alone"),
    (lambda d: corrupt(d, 4, b"\x04"), "unsupported frame version 4"),
    (lambda d: corrupt(d, 4, b"\x00"), "unsupported frame version 0"),
    (lambda d: corrupt(d, 4, b"\x02"), "feature_width: must be at least 1"),  # read in version 2's layout
    (lambda d: corrupt(d, 5, b"\x0a"), "unknown frame kind 10"),
    (lambda d: corrupt(d, 5, b"\x09"), "a frame of kind 9, not 1"),
    (lambda d: corrupt(d, 5, b"\x02"), "kind 2, not 1"),
    (lambda d: corrupt(d, 6, b"\x01"), "reserved: must be 0"),
    (lambda d: corrupt(d, 10, b"\xff"), "run is not valid UTF-8"),
    (lambda d: d[:8] + b"\x00\x00" + d[12:], "run: empty"),
    (lambda d: corrupt(d, 0x2F, b"\x01"), "padding bytes are not zero"),
    (lambda d: corrupt(d, 0x2E, b"\x07"), "dtype: unknown code 7"),
    (lambda d: corrupt(d, 0x22, b"\x00"), "row_count: must be at least 1"),
    (lambda d: d + b"\x00", "probabilities: 2 rows × 3 classes × 4 bytes do not match the 25 bytes left"),
    (lambda d: d[:-1], "probabilities: 2 rows × 3 classes × 4 bytes do not match the 23 bytes left"),
    (lambda d: d[:50], "truncated at labels: needs 8 bytes, 2 left"),
])
def test_decode_chunk_refuses(mutate, message):
    with pytest.raises(WireError, match=message):
        wire.decode_chunk(mutate(fixture("chunk_f32.bin")))


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d + b"\x00", "features: 3 rows × 4 features × 4 bytes do not match the 49 bytes left"),
    (lambda d: d[:-1], "features: 3 rows × 4 features × 4 bytes do not match the 47 bytes left"),
    (lambda d: corrupt(d, 51, b"\x03"), "features: 3 rows × 4 features × 8 bytes do not match the 48 bytes left"),
    (lambda d: corrupt(d, 51, b"\x07"), "feature_dtype: unknown code 7"),
    (lambda d: corrupt(d, 47, struct.pack("<I", 0)), "feature_width: must be at least 1"),
    (lambda d: corrupt(d, 47, struct.pack("<I", 8193)), "feature_width: 8193 exceeds the limit of 8192"),
    (lambda d: corrupt(d, 90, b"\x01"), "padding bytes are not zero"),  # before the features
    (lambda d: corrupt(d, 53, b"\x01"), "padding bytes are not zero"),  # after feature_dtype
    (lambda d: corrupt(d, 38, struct.pack("<I", 100)), "probabilities: 3 rows × 100 classes × 2 bytes exceed the 72"),
    (lambda d: corrupt(d, 4, b"\x01"), "padding bytes are not zero"),  # read in version 1's layout
    (lambda d: d[:93], "truncated at padding"),
])
def test_decode_chunk_with_features_refuses(mutate, message):
    with pytest.raises(WireError, match=message):
        wire.decode_chunk(mutate(fixture("chunk_features_f32.bin")))


def test_decode_manifest_with_features_refuses():
    data = fixture("manifest_features.bin")
    with pytest.raises(WireError, match="feature_width: must be at least 1"):
        wire.decode_manifest(corrupt(data, 66, struct.pack("<I", 0)))
    with pytest.raises(WireError, match="8192 features and 20000 target classes make 197434913 statistics"):
        wire.decode_manifest(corrupt(corrupt(data, 66, struct.pack("<I", 8192)), 41, struct.pack("<I", 20000)))
    with pytest.raises(WireError, match="1 bytes after the last field"):
        wire.decode_manifest(data + b"\x00")
    with pytest.raises(WireError, match="flags: reserved bits set in 2"):
        wire.decode_manifest(corrupt(data, 65, b"\x02"))
    with pytest.raises(WireError, match="unsupported frame version 3"):
        wire.decode_manifest(corrupt(data, 4, b"\x03"))


def test_decode_manifest_refuses():
    data = fixture("manifest.bin")
    with pytest.raises(WireError, match="1 bytes after the last field"):
        wire.decode_manifest(data + b"\x00")
    with pytest.raises(WireError, match="chunk_count = 2 does not fit in the 47 bytes left"):
        wire.decode_manifest(data[:-1])


def test_murmur2_matches_the_java_client():
    # Kafka's own test vectors (clients' UtilsTest.testMurmur2), as signed Java ints.
    vectors = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
               b"a-little-bit-longer-string": -1486304829,
               b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, b"abc": 479470107}
    for key, expected in vectors.items():
        assert struct.unpack("<i", struct.pack("<I", wire.murmur2(key)))[0] == expected, key
    assert wire.key_partition("abc", 4) == (479470107 & 0x7FFFFFFF) % 4
