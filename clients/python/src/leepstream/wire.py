"""Frame encoders (and decoders) for the two records a producer publishes: chunks (kind 1) and
manifests (kind 2), as specified in docs/wire-format.md: version 1, or version 2 when the run
carries the source model's features (a chunk with features, a manifest with the feature width);
a chunk of features alone, from a model without a classifier head (no probabilities, Z = 0), is
version 3, and its run's manifest version 2 with `source_classes` 0.

Pure functions: bytes in, bytes out, nothing touches Kafka. Every integer and float is
little-endian; strings are a u16 byte length and UTF-8; `pad8` pads with zeros to a multiple of
8 bytes counted from the frame's first byte (chunks only, before each array).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple, Sequence

import numpy as np

MAGIC = b"LPST"
VERSION = 1
#: The version of chunks and manifests that carry features (without them: `VERSION`, 1).
FEATURES_VERSION = 2
#: The version of a chunk of features alone (no probabilities: `source_classes` 0).
FEATURES_ONLY_VERSION = 3
KIND_CHUNK = 1
KIND_MANIFEST = 2
#: The newest version of any kind (the partial's), for the first check of a header.
_NEWEST_VERSION = 3
#: The newest version of each kind this module decodes.
_KIND_VERSIONS = {KIND_CHUNK: FEATURES_ONLY_VERSION, KIND_MANIFEST: FEATURES_VERSION}

#: The largest feature width D a frame may declare (Swift `WireFormat.maxFeatureWidth`).
MAX_FEATURE_WIDTH = 8192
#: The largest number of feature statistics L a frame may imply (Swift `WireFormat.maxFeatureValues`).
MAX_FEATURE_VALUES = 1 << 27

#: The probability dtype of each wire code, little-endian as on the wire.
DTYPES_BY_CODE: dict[int, np.dtype] = {1: np.dtype("<f2"), 2: np.dtype("<f4"), 3: np.dtype("<f8")}



def dtype_code(dtype: np.dtype) -> int | None:
    """The wire's dtype code (1 = f16, 2 = f32, 3 = f64) of a float dtype in either byte order."""
    return {2: 1, 4: 2, 8: 3}.get(dtype.itemsize) if dtype.kind == "f" else None


#: Manifest `flags` bit 0: compute EEP accuracy for the run.
FLAG_EEP_ACCURACY = 0x01

#: The broker's message limit that leepstream assumes by default (`--max-message-bytes`).
DEFAULT_MAX_MESSAGE_BYTES = 1_000_000
#: Bytes kept free in every frame for the header, the fixed fields and the strings.
HEADROOM = 4096
#: Bytes of one manifest entry: first_row u64, row_count u32, partition i32, offset i64.
MANIFEST_ENTRY_BYTES = 24

_HEADER = struct.Struct("<4sBBH")
# Up to and including target_classes: the same in every version of a chunk; then dtype (versions
# 1 and 2), then feature_width and feature_dtype (versions 2 and 3).
_CHUNK_FIELDS = struct.Struct("<IIQIII")
_DTYPE_FIELD = struct.Struct("<B")
_CHUNK_FEATURE_FIELDS = struct.Struct("<IB")
# Up to and including flags; then feature_width (version 2 only) and chunk_count.
_MANIFEST_FIELDS = struct.Struct("<IIIIQIIIB")
_U32_FIELD = struct.Struct("<I")
_ENTRY = struct.Struct("<QIiq")
_ENTRY_DTYPE = np.dtype([("first_row", "<u8"), ("row_count", "<u4"), ("partition", "<i4"), ("offset", "<i8")])

_U32 = 0xFFFF_FFFF
_U63 = (1 << 63) - 1
_I32_MIN, _I32_MAX = -(1 << 31), (1 << 31) - 1
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1


_NO_SOURCE_CLASSES_WITHOUT_FEATURES = ("0 without features: a run sends softmax outputs (source_classes ≥ 1), "
                                       "features (feature_width ≥ 1) or both")


class WireError(ValueError):
    """A value that cannot be encoded, or bytes that are not a valid frame."""


class ChunkLocation(NamedTuple):
    """One manifest entry: a chunk of the manifest's shard and where it landed on `<prefix>chunks`."""

    first_row: int
    row_count: int
    partition: int
    offset: int


# ---------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------


def feature_value_count(target_classes: int, feature_width: int) -> int:
    """L = Y + D + D(D+1)/2 + D + 1 + Y·D, the feature statistics a worker keeps for Y target
    classes and D features (docs/wire-format.md, "Feature statistics")."""
    y, d = target_classes, feature_width
    return y + d + d * (d + 1) // 2 + d + 1 + y * d


def check_feature_width(feature_width: int, target_classes: int) -> None:
    """D within [1, 8192], and the L statistics it implies with Y within 2^27, as decoders require."""
    if not 1 <= feature_width <= MAX_FEATURE_WIDTH:
        raise WireError(f"feature_width = {feature_width} is outside [1, {MAX_FEATURE_WIDTH}]")
    values = feature_value_count(target_classes, feature_width)
    if values > MAX_FEATURE_VALUES:
        raise WireError(f"feature_width: {feature_width} features and {target_classes} target classes make {values} "
                        f"statistics, beyond the limit of {MAX_FEATURE_VALUES}")


def encode_header(kind: int, version: int = VERSION) -> bytes:
    """The common 8 bytes: magic `LPST`, `version`, `kind`, reserved u16 = 0."""
    return _HEADER.pack(MAGIC, version, kind, 0)


def encode_string(text: str, field: str = "string") -> bytes:
    """A u16 byte length, then the UTF-8 bytes (no terminator)."""
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise WireError(f"{field} is {len(raw)} bytes of UTF-8; at most 65535 fit")
    return struct.pack("<H", len(raw)) + raw


def encode_run_identity(run: str, model: str, dataset: str) -> bytes:
    """`run`, `model`, `dataset` as three strings; the run id must not be empty."""
    if not run:
        raise WireError("run: empty (a run id is required)")
    return encode_string(run, "run") + encode_string(model, "model") + encode_string(dataset, "dataset")


def _pad8(length: int) -> bytes:
    return b"\x00" * (-length % 8)


def _check_u32(name: str, value: int, minimum: int = 0) -> None:
    if not minimum <= value <= _U32:
        raise WireError(f"{name} = {value} is outside [{minimum}, {_U32}]")


def _check_shard(shard: int, shard_count: int) -> None:
    _check_u32("shard_count", shard_count, 1)
    if not 0 <= shard < shard_count:
        raise WireError(f"shard: {shard} is not below shard_count {shard_count}")


def encode_chunk(
    run: str,
    model: str,
    dataset: str,
    *,
    shard: int,
    shard_count: int,
    first_row: int,
    target_classes: int,
    labels: np.ndarray | Sequence[int],
    probabilities: np.ndarray | None = None,
    features: np.ndarray | None = None,
) -> bytes:
    """A chunk frame (kind 1) of R rows: their `labels` (R integers, sent as i32) with
    `probabilities` (R×Z, float16, float32 or float64, kept in its dtype), `features` (R×D,
    float16, float32 or float64 independently of θ, kept in their dtype) or both. Version 1 with
    probabilities alone, 2 with both, 3 with features alone (a model without a classifier head:
    `source_classes` 0, no θ).

    Checks the frame's structure only (R ≥ 1, Z ≥ 1 when given, Y ≥ 1, 1 ≤ D ≤ 8192, shapes,
    ranges of the fields); the rows themselves are the caller's to validate (see
    `leepstream.validation`)."""
    if probabilities is None and features is None:
        raise WireError("a chunk carries probabilities, features or both; got neither")
    y = np.asarray(labels)
    if y.ndim != 1:
        raise WireError(f"labels must be 1-D with one label per row, got shape {y.shape}")
    rows = y.shape[0]
    theta = None if probabilities is None else np.asarray(probabilities)
    code, source_classes = None, 0
    if theta is not None:
        if theta.ndim != 2:
            raise WireError(f"probabilities must be 2-D (rows × source classes), got shape {theta.shape}")
        code = dtype_code(theta.dtype)
        if code is None:
            raise WireError(f"probabilities have dtype {theta.dtype}; the wire carries float16, float32 or float64")
        if theta.shape[0] != rows:
            raise WireError(f"labels must be 1-D with one label per row ({theta.shape[0]}), got shape {y.shape}")
        source_classes = theta.shape[1]
    if y.dtype.kind not in "iu":
        raise WireError(f"labels have dtype {y.dtype}; they must be integers")
    if rows and y.dtype != np.dtype("<i4") and (int(y.min()) < _I32_MIN or int(y.max()) > _I32_MAX):
        raise WireError("labels do not fit the wire's i32")
    _check_shard(shard, shard_count)
    _check_u32("row_count", rows, 1)
    if theta is not None:
        _check_u32("source_classes", source_classes, 1)
    _check_u32("target_classes", target_classes, 1)
    if not 0 <= first_row <= _U63 - rows:
        raise WireError(f"first_row = {first_row} is outside [0, 2^63 - row_count]")
    phi = None if features is None else np.asarray(features)
    feature_code = None
    if phi is not None:
        if phi.ndim != 2 or phi.shape[0] != rows:
            raise WireError(f"features must be 2-D with one row per label ({rows} × D), got shape {phi.shape}")
        feature_code = dtype_code(phi.dtype)
        if feature_code is None:
            raise WireError(f"features have dtype {phi.dtype}; the wire carries float16, float32 or float64")
        check_feature_width(phi.shape[1], target_classes)

    version = FEATURES_ONLY_VERSION if theta is None else (VERSION if phi is None else FEATURES_VERSION)
    head = bytearray(encode_header(KIND_CHUNK, version))
    head += encode_run_identity(run, model, dataset)
    head += _CHUNK_FIELDS.pack(shard, shard_count, first_row, rows, source_classes, target_classes)
    if theta is not None:
        head += _DTYPE_FIELD.pack(code)
    if phi is not None:
        head += _CHUNK_FEATURE_FIELDS.pack(phi.shape[1], feature_code)
    head += _pad8(len(head))
    label_bytes = y.astype("<i4", copy=False).tobytes()
    parts = [head, label_bytes, _pad8(len(head) + len(label_bytes))]
    if theta is not None:
        parts.append(np.ascontiguousarray(theta, dtype=theta.dtype.newbyteorder("<")).tobytes())
    if phi is not None:
        parts.append(_pad8(sum(map(len, parts))))
        parts.append(np.ascontiguousarray(phi, dtype=phi.dtype.newbyteorder("<")).tobytes())
    return b"".join(parts)


def encode_manifest(
    run: str,
    model: str,
    dataset: str,
    *,
    shard: int,
    shard_count: int,
    source_classes: int,
    target_classes: int,
    shard_rows: int,
    chunks: Iterable[tuple[int, int, int, int]],
    total_chunks: int | None = None,
    part_index: int = 0,
    part_count: int = 1,
    eep_accuracy: bool = False,
    feature_width: int = 0,
) -> bytes:
    """One part of a shard's manifest (kind 2): `chunks` are this part's (first_row, row_count,
    partition, offset) entries, in the order given; `total_chunks` defaults to their number
    (right for a one-part manifest). With a `feature_width` D ≥ 1 (the run's chunks carry D
    features a row) the manifest is version 2; with 0, version 1. `source_classes` is Z, or 0
    for a run of features alone (which needs a `feature_width`)."""
    entries = [ChunkLocation(*entry) for entry in chunks]
    total = len(entries) if total_chunks is None else total_chunks
    _check_shard(shard, shard_count)
    _check_u32("source_classes", source_classes, 0 if feature_width else 1)
    _check_u32("target_classes", target_classes, 1)
    _check_u32("total_chunks", total)
    _check_u32("part_count", part_count, 1)
    if not 0 <= part_index < part_count:
        raise WireError(f"part_index: {part_index} is not below part_count {part_count}")
    if not 0 <= shard_rows <= _U63:
        raise WireError(f"shard_rows = {shard_rows} is outside [0, 2^63)")
    for entry in entries:
        if not (0 <= entry.first_row <= _U63 and 1 <= entry.row_count <= _U32
                and _I32_MIN <= entry.partition <= _I32_MAX and _I64_MIN <= entry.offset <= _I64_MAX):
            raise WireError(f"manifest entry {tuple(entry)} is out of range")
    if feature_width:
        check_feature_width(feature_width, target_classes)
    frame = bytearray(encode_header(KIND_MANIFEST, FEATURES_VERSION if feature_width else VERSION))
    frame += encode_run_identity(run, model, dataset)
    frame += _MANIFEST_FIELDS.pack(shard, shard_count, source_classes, target_classes, shard_rows, total,
                                   part_index, part_count, FLAG_EEP_ACCURACY if eep_accuracy else 0)
    if feature_width:
        frame += _U32_FIELD.pack(feature_width)
    frame += _U32_FIELD.pack(len(entries))
    for entry in entries:
        frame += _ENTRY.pack(*entry)
    return bytes(frame)


def manifest_entries_per_part(max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> int:
    """Entries in one manifest part (41,496 at 1,000,000 bytes), as Swift splits them."""
    return max(1, (max_message_bytes - HEADROOM) // MANIFEST_ENTRY_BYTES)


def encode_manifest_parts(
    run: str,
    model: str,
    dataset: str,
    *,
    shard: int,
    shard_count: int,
    source_classes: int,
    target_classes: int,
    shard_rows: int,
    chunks: Sequence[tuple[int, int, int, int]],
    eep_accuracy: bool = False,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    feature_width: int = 0,
) -> list[bytes]:
    """A whole shard's manifest, split into parts that fit the message limit. `chunks` must be
    every chunk of the shard; an empty shard yields one part with no entries. `feature_width`:
    D of the run's features, 0 for none."""
    per_part = manifest_entries_per_part(max_message_bytes)
    slices = [chunks[start:start + per_part] for start in range(0, max(len(chunks), 1), per_part)]
    return [
        encode_manifest(run, model, dataset, shard=shard, shard_count=shard_count, source_classes=source_classes,
                        target_classes=target_classes, shard_rows=shard_rows, chunks=part,
                        total_chunks=len(chunks), part_index=index, part_count=len(slices),
                        eep_accuracy=eep_accuracy, feature_width=feature_width)
        for index, part in enumerate(slices)
    ]


def rows_per_chunk(
    source_classes: int,
    dtype: np.dtype | type | None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    requested: int | None = None,
    feature_width: int = 0,
    feature_dtype: np.dtype | type | None = None,
) -> int:
    """Rows per chunk so that a chunk frame stays within `max_message_bytes`, at most
    `requested`: max(1, ⌊(limit − 4,096) ÷ (Z·size + D·fsize + 4)⌋), exactly as `leep produce`
    cuts (Z = `source_classes` values of `dtype` a row, 0 for features alone, when `dtype` may
    be None; D = `feature_width` features of `feature_dtype` a row, 0 without features).

    Chunks start at multiples of this from row 0 of the shard, which is what makes publishing
    a shard again idempotent; so a shard must always be published with the same value."""
    size = np.dtype(dtype).itemsize if source_classes else 0
    feature_size = np.dtype(feature_dtype).itemsize if feature_width else 0
    row_bytes = source_classes * size + feature_width * feature_size + 4
    if row_bytes + HEADROOM > max_message_bytes:
        contents = " and ".join(([f"{source_classes} × {size}-byte values"] if source_classes else [])
                                + ([f"{feature_width} × {feature_size}-byte features"] if feature_width else []))
        raise WireError(f"one row of {contents} does not fit a {max_message_bytes}-byte "
                        f"message (with {HEADROOM} bytes of headroom); raise the message limit")
    rows = max(1, (max_message_bytes - HEADROOM) // row_bytes)
    if requested is not None:
        if requested < 1:
            raise WireError(f"rows per chunk must be at least 1, got {requested}")
        rows = min(rows, requested)
    return rows


# ---------------------------------------------------------------------------------------------
# Decoding (the structural checks of docs/wire-format.md, "What decoding rejects")
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkFrame:
    """A decoded chunk. `labels` are int32, `probabilities` R×Z in the frame's dtype or None in a
    version-3 frame (features alone), `features` R×D in theirs or None in a version-1 frame
    (views of the frame's bytes, read-only)."""

    run: str
    model: str
    dataset: str
    shard: int
    shard_count: int
    first_row: int
    target_classes: int
    labels: np.ndarray
    probabilities: np.ndarray | None
    features: np.ndarray | None = None

    @property
    def row_count(self) -> int:
        return int(self.labels.shape[0])

    @property
    def source_classes(self) -> int:
        """Z, or 0 when the chunk carries features alone."""
        return 0 if self.probabilities is None else int(self.probabilities.shape[1])

    @property
    def feature_width(self) -> int:
        """D, or 0 when the chunk carries no features."""
        return 0 if self.features is None else int(self.features.shape[1])


@dataclass(frozen=True)
class ManifestFrame:
    """A decoded manifest part."""

    run: str
    model: str
    dataset: str
    shard: int
    shard_count: int
    source_classes: int
    target_classes: int
    shard_rows: int
    total_chunks: int
    part_index: int
    part_count: int
    eep_accuracy: bool
    chunks: tuple[ChunkLocation, ...]
    #: D of the run's features; 0 in a version-1 manifest (none).
    feature_width: int = 0


class _Reader:
    def __init__(self, data: bytes | bytearray | memoryview):
        self.data = memoryview(data).cast("B")
        self.position = 0

    @property
    def left(self) -> int:
        return len(self.data) - self.position

    def take(self, count: int, field: str) -> memoryview:
        if count > self.left:
            raise WireError(f"truncated at {field}: needs {count} bytes, {self.left} left")
        view = self.data[self.position:self.position + count]
        self.position += count
        return view

    def unpack(self, layout: struct.Struct, field: str) -> tuple[Any, ...]:
        return layout.unpack(self.take(layout.size, field))

    def string(self, field: str) -> str:
        (length,) = self.unpack(struct.Struct("<H"), field)
        raw = self.take(length, field)
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise WireError(f"{field} is not valid UTF-8") from None

    def pad8(self) -> None:
        padding = self.take(-self.position % 8, "padding")
        if any(padding):
            raise WireError("padding bytes are not zero")


def _read_header(reader: _Reader, kind: int) -> int:
    """Checks the header of a frame of `kind`; returns its version."""
    magic, version, found, reserved = reader.unpack(_HEADER, "header")
    unsupported = (f"unsupported frame version {version} (this client reads versions 1 to 3 of chunk frames, 1 to 2 "
                   f"of manifest frames)")
    if magic != MAGIC:
        raise WireError("bad magic: not a leepstream frame")
    if not 1 <= version <= _NEWEST_VERSION:
        raise WireError(unsupported)
    if not 1 <= found <= 9:
        raise WireError(f"unknown frame kind {found}")
    if reserved != 0:
        raise WireError("reserved: must be 0")
    if found != kind:
        raise WireError(f"a frame of kind {found}, not {kind}")
    if version > _KIND_VERSIONS[kind]:
        raise WireError(unsupported)
    return int(version)


def _read_feature_width(reader: _Reader, target_classes: int) -> int:
    (width,) = reader.unpack(_U32_FIELD, "feature_width")
    if width < 1:
        raise WireError("feature_width: must be at least 1")
    if width > MAX_FEATURE_WIDTH:
        raise WireError(f"feature_width: {width} exceeds the limit of {MAX_FEATURE_WIDTH}")
    check_feature_width(width, target_classes)
    return int(width)


def _read_identity(reader: _Reader) -> tuple[str, str, str]:
    run, model, dataset = reader.string("run"), reader.string("model"), reader.string("dataset")
    if not run:
        raise WireError("run: empty")
    return run, model, dataset


def decode_chunk(data: bytes | bytearray | memoryview) -> ChunkFrame:
    """Decodes a chunk frame, rejecting what Swift's `Frame.decode` rejects."""
    reader = _Reader(data)
    version = _read_header(reader, KIND_CHUNK)
    run, model, dataset = _read_identity(reader)
    shard, shard_count, first_row, rows, z, y = reader.unpack(_CHUNK_FIELDS, "chunk fields")
    if shard >= shard_count:
        raise WireError(f"shard: {shard} is not below shard_count {shard_count}")
    if rows < 1:
        raise WireError("row_count: must be at least 1")
    if y < 1:
        raise WireError("target_classes: must be at least 1")
    if version == VERSION and z == 0:
        raise WireError(f"source_classes: {_NO_SOURCE_CLASSES_WITHOUT_FEATURES}")
    if version == FEATURES_VERSION and z == 0:
        raise WireError("source_classes: 0 in a version-2 chunk: a chunk of features alone is version 3")
    if version == FEATURES_ONLY_VERSION and z != 0:
        raise WireError(f"source_classes: {z} in a version-3 chunk, which carries features alone: must be 0")
    dtype = None
    if version != FEATURES_ONLY_VERSION:
        (code,) = reader.unpack(_DTYPE_FIELD, "dtype")
        dtype = DTYPES_BY_CODE.get(code)
        if dtype is None:
            raise WireError(f"dtype: unknown code {code}")
    width, feature_dtype = 0, None
    if version >= FEATURES_VERSION:
        width = _read_feature_width(reader, y)
        (feature_code,) = reader.unpack(struct.Struct("<B"), "feature_dtype")
        feature_dtype = DTYPES_BY_CODE.get(feature_code)
        if feature_dtype is None:
            raise WireError(f"feature_dtype: unknown code {feature_code}")
    reader.pad8()
    labels = np.frombuffer(reader.take(4 * rows, "labels"), dtype="<i4")
    reader.pad8()
    theta = None
    if dtype is not None:
        theta_bytes = rows * z * dtype.itemsize
        if feature_dtype is None and reader.left != theta_bytes:
            raise WireError(f"probabilities: {rows} rows × {z} classes × {dtype.itemsize} bytes do not match "
                            f"the {reader.left} bytes left")
        if feature_dtype is not None and reader.left < theta_bytes:
            raise WireError(f"probabilities: {rows} rows × {z} classes × {dtype.itemsize} bytes exceed "
                            f"the {reader.left} bytes left")
        theta = np.frombuffer(reader.take(theta_bytes, "probabilities"), dtype=dtype).reshape(rows, z)
    features = None
    if feature_dtype is not None:
        reader.pad8()
        if reader.left != rows * width * feature_dtype.itemsize:
            raise WireError(f"features: {rows} rows × {width} features × {feature_dtype.itemsize} bytes do not match "
                            f"the {reader.left} bytes left")
        features = np.frombuffer(reader.take(reader.left, "features"), dtype=feature_dtype).reshape(rows, width)
    return ChunkFrame(run, model, dataset, shard, shard_count, first_row, y, labels, theta, features)


def decode_manifest(data: bytes | bytearray | memoryview) -> ManifestFrame:
    """Decodes a manifest part, rejecting what Swift's `Frame.decode` rejects."""
    reader = _Reader(data)
    version = _read_header(reader, KIND_MANIFEST)
    run, model, dataset = _read_identity(reader)
    (shard, shard_count, z, y, shard_rows, total, part_index, part_count,
     flags) = reader.unpack(_MANIFEST_FIELDS, "manifest fields")
    if shard >= shard_count:
        raise WireError(f"shard: {shard} is not below shard_count {shard_count}")
    if y < 1:
        raise WireError("target_classes: must be at least 1")
    if z == 0 and version < FEATURES_VERSION:
        raise WireError(f"source_classes: {_NO_SOURCE_CLASSES_WITHOUT_FEATURES}")
    if part_index >= part_count:
        raise WireError(f"part_index: {part_index} is not below part_count {part_count}")
    if flags & ~FLAG_EEP_ACCURACY:
        raise WireError(f"flags: reserved bits set in {flags}")
    width = _read_feature_width(reader, y) if version >= FEATURES_VERSION else 0
    (count,) = reader.unpack(_U32_FIELD, "chunk_count")
    if count * MANIFEST_ENTRY_BYTES > reader.left:
        raise WireError(f"chunk_count = {count} does not fit in the {reader.left} bytes left")
    entries = np.frombuffer(reader.take(count * MANIFEST_ENTRY_BYTES, "chunks"), dtype=_ENTRY_DTYPE)
    if reader.left:
        raise WireError(f"{reader.left} bytes after the last field")
    chunks = tuple(ChunkLocation(int(e["first_row"]), int(e["row_count"]), int(e["partition"]), int(e["offset"]))
                   for e in entries)
    return ManifestFrame(run, model, dataset, shard, shard_count, z, y, shard_rows, total, part_index, part_count,
                         bool(flags & FLAG_EEP_ACCURACY), chunks, width)


# ---------------------------------------------------------------------------------------------
# Partitioning
# ---------------------------------------------------------------------------------------------


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (the Java client's and librdkafka's `murmur2_random` partitioner),
    as an unsigned 32-bit value."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & _U32
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & _U32
        k ^= k >> r
        k = (k * m) & _U32
        h = (h * m) & _U32
        h ^= k
    tail = data[whole:]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if len(tail) >= 1:
        h ^= tail[0]
        h = (h * m) & _U32
    h ^= h >> 13
    h = (h * m) & _U32
    h ^= h >> 15
    return h


def key_partition(key: bytes | str, partitions: int) -> int:
    """The partition a non-empty key lands in: (murmur2(key) & 0x7fffffff) mod `partitions`."""
    raw = key.encode("utf-8") if isinstance(key, str) else key
    return (murmur2(raw) & 0x7FFFFFFF) % partitions
