#!/usr/bin/env python3
"""Writes the golden wire-format fixtures (one .bin file per frame kind) next to this script.

An independent encoder written from docs/wire-format.md with nothing but `struct`: it never
calls the Swift code. GoldenFixtureTests.swift checks that Swift's encoder produces exactly
these bytes from the same field values and that Swift's decoder reads them back, so the two
implementations keep each other (and the document) honest.

Usage:
    python3 make_fixtures.py            # (re)write the .bin files
    python3 make_fixtures.py --check    # exit 1 if a .bin file differs from what would be written
    python3 make_fixtures.py --dump chunk_f32.bin   # hex dump of one fixture

Every value below is fixed, so running the script again rewrites identical files.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# --------------------------------------------------------------------------------------------
# Primitives (docs/wire-format.md, "Encoding rules")
# --------------------------------------------------------------------------------------------

MAGIC = b"LPST"
VERSION = 1
# Partial frames carried the run's names in version 2; version 3 (what workers write now) adds
# the feature width and a section byte to each part.
PARTIAL_VERSION_NAMES = 2
PARTIAL_VERSION = 3
# Chunks and manifests are version 2 when the run carries features, still version 1 otherwise.
FEATURES_VERSION = 2
# A chunk of features alone (no softmax outputs, source_classes 0) is version 3.
FEATURES_ONLY_CHUNK_VERSION = 3

SECTION_JOINT = 0
SECTION_FEATURE_STATISTICS = 1
# Since issue 19 a version-3 partial's section byte also names the other feature statistics
# (docs/wire-format.md, "Feature statistics"): per-class variances, per-class scatter matrices,
# the pooled within-class scatter.
SECTION_CLASS_VARIANCES = 2
SECTION_CLASS_SCATTERS = 3
SECTION_WITHIN_CLASS_SCATTER = 4

# A task result is version 2 when it carries a part of an SFDA mixing task's statistics.
TASK_RESULT_STATISTICS_VERSION = 2

KIND_CHUNK = 1
KIND_MANIFEST = 2
KIND_PARTIAL = 3
KIND_TASK = 4
KIND_CONDITIONAL = 5
KIND_TASK_RESULT = 6
KIND_CHUNK_REJECTED = 7
KIND_RUN_MARKER = 8
KIND_PARTITION_MARKER = 9
KIND_ROW_SAMPLE = 10

DTYPE_FLOAT16 = 1
DTYPE_FLOAT32 = 2
DTYPE_FLOAT64 = 3
DTYPE_FORMAT = {DTYPE_FLOAT16: "e", DTYPE_FLOAT32: "f", DTYPE_FLOAT64: "d"}

PASS_REPAIR = 1
PASS_EEP = 2
PASS_EEP_ACCURACY = 3
PASS_SFDA_MIX = 4
PASS_SFDA_SCORE = 5

MARKER_PASS2_ISSUED = 1
MARKER_CLOSED = 2
MARKER_REPAIR_ISSUED = 3
MARKER_TASKS_ISSUED = 4

PARTITION_BARRIER = 1
PARTITION_DEAD_LETTERED = 2


def header(kind: int, version: int = VERSION) -> bytearray:
    """The common 8 bytes: magic, version, kind, reserved u16 = 0."""
    return bytearray(struct.pack("<4sBBH", MAGIC, version, kind, 0))


def string(text: str) -> bytes:
    """A u16 byte length, then the UTF-8 bytes (no terminator)."""
    raw = text.encode("utf-8")
    assert len(raw) <= 0xFFFF
    return struct.pack("<H", len(raw)) + raw


def pad8(frame: bytearray) -> None:
    """Zero bytes until the frame's length (counted from its first byte) is a multiple of 8."""
    frame += b"\x00" * (-len(frame) % 8)


def run_identity(run: str, model: str, dataset: str) -> bytes:
    return string(run) + string(model) + string(dataset)


def feature_value_count(target_classes: int, feature_width: int) -> int:
    """L, the length of a partial's section 1 (docs/wire-format.md, "Feature statistics"):
    class counts [Y], mean [D], M2's upper triangle [D(D+1)/2], V3 [D], M4 [1], class means [Y·D]."""
    y, d = target_classes, feature_width
    return y + d + d * (d + 1) // 2 + d + 1 + y * d


def class_variances_count(target_classes: int, feature_width: int) -> int:
    """Section 2: class counts [Y], class means [Y·D], per-feature sums of squares [Y·D]."""
    return target_classes * (1 + 2 * feature_width)


def class_scatters_count(target_classes: int, feature_width: int) -> int:
    """Section 3: class counts [Y], class means [Y·D], Y upper triangles of D(D+1)/2."""
    d = feature_width
    return target_classes * (1 + d) + target_classes * d * (d + 1) // 2


def within_class_scatter_count(target_classes: int, feature_width: int) -> int:
    """Section 4 (and a version-2 task result): class counts [Y], class means [Y·D], one upper
    triangle of D(D+1)/2."""
    d = feature_width
    return target_classes * (1 + d) + d * (d + 1) // 2


SECTION_LENGTH = {
    SECTION_FEATURE_STATISTICS: feature_value_count,
    SECTION_CLASS_VARIANCES: class_variances_count,
    SECTION_CLASS_SCATTERS: class_scatters_count,
    SECTION_WITHIN_CLASS_SCATTER: within_class_scatter_count,
}


def upper_triangle(matrix: list[list[float]]) -> list[float]:
    """A symmetric D×D matrix packed row by row: row i's entries from column i to D − 1."""
    return [matrix[i][j] for i in range(len(matrix)) for j in range(i, len(matrix))]


# --------------------------------------------------------------------------------------------
# Identifiers: FNV-1a 64 (docs/wire-format.md, "Identifiers")
# --------------------------------------------------------------------------------------------

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3


def fnv1a64(data: bytes) -> int:
    h = FNV_OFFSET
    for byte in data:
        h ^= byte
        h = (h * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def id_prefix(run: str) -> bytes:
    """The run as the hash sees it: a u32 (not u16) byte length, then the UTF-8 bytes."""
    raw = run.encode("utf-8")
    return struct.pack("<I", len(raw)) + raw


def chunk_ids_for_hash(chunks: list[tuple[int, int, int]]) -> bytes:
    """(shard, first_row, row_count) triples, sorted ascending, as u32, u64, u32."""
    return b"".join(struct.pack("<IQI", *chunk) for chunk in sorted(chunks))


def partial_id(run: str, chunks: list[tuple[int, int, int]]) -> int:
    return fnv1a64(id_prefix(run) + chunk_ids_for_hash(chunks))


def task_id(run: str, pass_code: int, chunks: list[tuple[int, int, int]]) -> int:
    return fnv1a64(id_prefix(run) + struct.pack("<B", pass_code) + chunk_ids_for_hash(chunks))


# --------------------------------------------------------------------------------------------
# Frames (docs/wire-format.md, one section per kind)
# --------------------------------------------------------------------------------------------


def chunk_frame(run, model, dataset, shard, shard_count, first_row, source_classes,
                target_classes, dtype, labels, rows, features=None, feature_dtype=None) -> bytes:
    """Without `features`, version 1. With them (one row of D values per label, of
    `feature_dtype`), version 2: feature_width u32 and feature_dtype u8 after dtype, and the
    features after θ, behind a pad8 of their own."""
    assert all(len(row) == source_classes for row in rows) and len(rows) == len(labels)
    frame = header(KIND_CHUNK, VERSION if features is None else FEATURES_VERSION)
    frame += run_identity(run, model, dataset)
    frame += struct.pack("<IIQIIIB", shard, shard_count, first_row, len(labels), source_classes,
                         target_classes, dtype)
    if features is not None:
        width = len(features[0])
        assert len(features) == len(labels) and all(len(row) == width for row in features)
        frame += struct.pack("<IB", width, feature_dtype)
    pad8(frame)
    frame += struct.pack(f"<{len(labels)}i", *labels)
    pad8(frame)
    values = [value for row in rows for value in row]
    frame += struct.pack(f"<{len(values)}{DTYPE_FORMAT[dtype]}", *values)
    if features is not None:
        pad8(frame)
        values = [value for row in features for value in row]
        frame += struct.pack(f"<{len(values)}{DTYPE_FORMAT[feature_dtype]}", *values)
    return bytes(frame)


def features_only_chunk_frame(run, model, dataset, shard, shard_count, first_row, target_classes,
                              labels, features, feature_dtype) -> bytes:
    """Version 3: a chunk of features alone (a model without a classifier head). The fixed
    fields of versions 1 and 2 up to target_classes, with source_classes 0; then feature_width
    u32 and feature_dtype u8 (no dtype), pad8, the labels, pad8, the features (no θ)."""
    width = len(features[0])
    assert len(features) == len(labels) and all(len(row) == width for row in features)
    frame = header(KIND_CHUNK, FEATURES_ONLY_CHUNK_VERSION)
    frame += run_identity(run, model, dataset)
    frame += struct.pack("<IIQIII", shard, shard_count, first_row, len(labels), 0, target_classes)
    frame += struct.pack("<IB", width, feature_dtype)
    pad8(frame)
    frame += struct.pack(f"<{len(labels)}i", *labels)
    pad8(frame)
    values = [value for row in features for value in row]
    frame += struct.pack(f"<{len(values)}{DTYPE_FORMAT[feature_dtype]}", *values)
    return bytes(frame)


def manifest_frame(run, model, dataset, shard, shard_count, source_classes, target_classes,
                   shard_rows, total_chunks, part_index, part_count, chunks,
                   eep_accuracy=False, feature_width=0) -> bytes:
    """`chunks`: (first_row, row_count, partition, offset) per listed chunk. With a
    `feature_width` D ≥ 1, version 2 (D as a u32 right after flags; source_classes may then be
    0, a run of features alone); with 0, version 1."""
    frame = header(KIND_MANIFEST, FEATURES_VERSION if feature_width else VERSION)
    frame += run_identity(run, model, dataset)
    frame += struct.pack("<IIIIQIIIB", shard, shard_count, source_classes, target_classes,
                         shard_rows, total_chunks, part_index, part_count,
                         1 if eep_accuracy else 0)
    if feature_width:
        frame += struct.pack("<I", feature_width)
    frame += struct.pack("<I", len(chunks))
    for chunk in chunks:
        frame += struct.pack("<QIiq", *chunk)
    return bytes(frame)


def partial_frame(run, target_classes, source_classes, sample_count, chunks, part_index,
                  part_count, cell_start, joint_sums, argmax_counts, model=None, dataset=None) -> bytes:
    """`chunks`: (shard, first_row, row_count), in the order the frame lists them. With the
    model and data-set names, version 2 (as workers wrote before version 3); without, version 1
    (the run id only, as the oldest workers wrote)."""
    assert len(joint_sums) == len(argmax_counts)
    if model is None:
        frame = header(KIND_PARTIAL)
        frame += string(run)
    else:
        frame = header(KIND_PARTIAL, version=PARTIAL_VERSION_NAMES)
        frame += run_identity(run, model, dataset)
    frame += struct.pack("<QIIQI", partial_id(run, chunks), target_classes, source_classes,
                         sample_count, len(chunks))
    for chunk in chunks:
        frame += struct.pack("<IQI", *chunk)
    frame += struct.pack("<IIII", part_index, part_count, cell_start, len(joint_sums))
    pad8(frame)
    frame += struct.pack(f"<{len(joint_sums)}d", *joint_sums)
    frame += struct.pack(f"<{len(argmax_counts)}q", *argmax_counts)
    return bytes(frame)


def partial_v3_frame(run, model, dataset, target_classes, source_classes, feature_width, sample_count,
                     chunks, part_index, part_count, cell_start, section, joint_sums=(),
                     argmax_counts=(), feature_values=()) -> bytes:
    """A version-3 partial part (what workers write): feature_width after source_classes, a
    section byte after the matrix part, then section 0's joint sums and argmax counts or the
    float64 values of one feature statistic (sections 1 to 4). `part_index`/`part_count` number
    all parts of the partial; `cell_start` is within the part's section."""
    assert source_classes >= 1 or feature_width >= 1
    if section == SECTION_JOINT:
        assert source_classes >= 1 and len(joint_sums) == len(argmax_counts) and not feature_values
        cells, section_length = len(joint_sums), target_classes * source_classes
    else:
        assert feature_width >= 1 and not joint_sums and not argmax_counts
        cells, section_length = len(feature_values), SECTION_LENGTH[section](target_classes, feature_width)
    assert cell_start + cells <= section_length
    frame = header(KIND_PARTIAL, version=PARTIAL_VERSION)
    frame += run_identity(run, model, dataset)
    frame += struct.pack("<QIIIQI", partial_id(run, chunks), target_classes, source_classes, feature_width,
                         sample_count, len(chunks))
    for chunk in chunks:
        frame += struct.pack("<IQI", *chunk)
    frame += struct.pack("<IIIIB", part_index, part_count, cell_start, cells, section)
    pad8(frame)
    frame += struct.pack(f"<{len(joint_sums)}d", *joint_sums)
    frame += struct.pack(f"<{len(argmax_counts)}q", *argmax_counts)
    frame += struct.pack(f"<{len(feature_values)}d", *feature_values)
    return bytes(frame)


def task_frame(run, pass_code, conditional, chunks) -> bytes:
    """`conditional`: (partition, offset); `chunks`: (shard, first_row, row_count, partition, offset)."""
    frame = header(KIND_TASK)
    frame += string(run)
    frame += struct.pack("<QB", task_id(run, pass_code, [chunk[:3] for chunk in chunks]), pass_code)
    frame += struct.pack("<I", len(conditional))
    for location in conditional:
        frame += struct.pack("<iq", *location)
    frame += struct.pack("<I", len(chunks))
    for chunk in chunks:
        frame += struct.pack("<IQIiq", *chunk)
    return bytes(frame)


def conditional_frame(run, target_classes, source_classes, part_index, part_count, cell_start,
                      values) -> bytes:
    frame = header(KIND_CONDITIONAL)
    frame += string(run)
    frame += struct.pack("<IIIIII", target_classes, source_classes, part_index, part_count,
                         cell_start, len(values))
    pad8(frame)
    frame += struct.pack(f"<{len(values)}d", *values)
    return bytes(frame)


def task_result_frame(run, task, sample_count, log_eep_sum, hits, statistics=None) -> bytes:
    """Version 1 without `statistics`. With them — (target_classes, feature_width, part_index,
    part_count, cell_start, values): one part of an SFDA mixing task's within-class scatter of
    the mixed rows — version 2: the two u32, the matrix part, pad8, the float64 values."""
    frame = header(KIND_TASK_RESULT, VERSION if statistics is None else TASK_RESULT_STATISTICS_VERSION)
    frame += string(run)
    frame += struct.pack("<QQdQ", task, sample_count, log_eep_sum, hits)
    if statistics is not None:
        target_classes, feature_width, part_index, part_count, cell_start, values = statistics
        assert part_index < part_count and feature_width >= 1
        assert cell_start + len(values) <= within_class_scatter_count(target_classes, feature_width)
        frame += struct.pack("<IIIIII", target_classes, feature_width, part_index, part_count, cell_start, len(values))
        pad8(frame)
        frame += struct.pack(f"<{len(values)}d", *values)
    return bytes(frame)


def sfda_fit_matrix(coefficients, intercepts, other_means, labels, centre, shrinkage) -> tuple[int, int, list[float]]:
    """An SFDA fit as the (2K + 2) × (D + 1) matrix a conditional frame carries, row-major: K rows
    of a class's coefficients and its intercept; K rows of the mean of the other classes' means
    and the class's label; the global mean μ and 0; the shrinkage s and D zeros."""
    k, d = len(labels), len(centre)
    assert len(coefficients) == len(intercepts) == len(other_means) == k >= 2
    assert list(labels) == sorted(set(labels)), "labels distinct and ascending"
    values: list[float] = []
    for row, intercept in zip(coefficients, intercepts):
        assert len(row) == d
        values += [*row, intercept]
    for row, label in zip(other_means, labels):
        assert len(row) == d
        values += [*row, float(label)]
    values += [*centre, 0.0]
    values += [shrinkage] + [0.0] * d
    return 2 * k + 2, d + 1, values


def chunk_rejected_frame(run, model, dataset, shard, first_row, row_count, reason) -> bytes:
    frame = header(KIND_CHUNK_REJECTED)
    frame += run_identity(run, model, dataset)
    frame += struct.pack("<IQI", shard, first_row, row_count)
    frame += string(reason)
    return bytes(frame)


def run_marker_frame(run, marker, task_ids=(), pass_code=None) -> bytes:
    """Marker 1: the pass-2 task ids; marker 4: the SFDA pass (4 or 5), then its task ids."""
    frame = header(KIND_RUN_MARKER)
    frame += string(run)
    frame += struct.pack("<B", marker)
    if marker == MARKER_TASKS_ISSUED:
        assert pass_code in (PASS_SFDA_MIX, PASS_SFDA_SCORE)
        frame += struct.pack("<B", pass_code)
    if marker in (MARKER_PASS2_ISSUED, MARKER_TASKS_ISSUED):
        frame += struct.pack(f"<I{len(task_ids)}Q", len(task_ids), *task_ids)
    return bytes(frame)


def partition_marker_frame(marker, value) -> bytes:
    """A barrier (u64 token) or a dead-lettered marker (i64 offset)."""
    frame = header(KIND_PARTITION_MARKER)
    frame += struct.pack("<B", marker)
    frame += struct.pack("<Q" if marker == PARTITION_BARRIER else "<q", value)
    return bytes(frame)


def row_sample_frame(run, model, dataset, shard, first_row, row_count, source_classes, rows, labels,
                     probabilities) -> bytes:
    """Kind 10, version 1: a chunk's sampled rows — run identity, chunk id, u32 Z, u32 count,
    u32 row indices, i32 labels, pad8, count×Z f64 values."""
    frame = header(KIND_ROW_SAMPLE, 1)
    frame += run_identity(run, model, dataset)
    frame += struct.pack("<IQI", shard, first_row, row_count)
    frame += struct.pack("<II", source_classes, len(rows))
    frame += struct.pack(f"<{len(rows)}I", *rows)
    frame += struct.pack(f"<{len(labels)}i", *labels)
    pad8(frame)
    frame += struct.pack(f"<{len(probabilities)}d", *probabilities)
    return bytes(frame)


# --------------------------------------------------------------------------------------------
# The fixtures. GoldenFixtureTests.swift repeats these values; change both together.
# --------------------------------------------------------------------------------------------

PASS2_CHUNKS = [(0, 0, 2, 3, 10), (1, 2, 2, 3, 11)]
PARTIAL_CHUNKS = [(1, 3, 2), (0, 0, 2)]
PASS2_TASK_ID = task_id("r1", PASS_EEP, [chunk[:3] for chunk in PASS2_CHUNKS])
# SFDA's mixing and scoring passes over the same chunks: other passes, so other ids.
SFDA_MIX_TASK_ID = task_id("r1", PASS_SFDA_MIX, [chunk[:3] for chunk in PASS2_CHUNKS])
SFDA_SCORE_TASK_ID = task_id("r1", PASS_SFDA_SCORE, [chunk[:3] for chunk in PASS2_CHUNKS])

# The 4 rows of PARTIAL_CHUNKS as features (D = 2) with their labels (Y = 2): the feature
# statistics of the section 2–4 fixtures are theirs, computed below with plain two-pass sums
# (every value exact in binary). GoldenFixtureTests.swift checks LEEPCore's `flattened` of the
# same rows against these fixtures.
STATISTIC_ROWS = [(0, (1.0, 1.0)), (0, (3.0, 2.0)), (1, (-4.0, 0.5)), (1, (-2.0, 3.5))]


def row_statistics(rows, target_classes, feature_width):
    """(class counts, class means Y×D, per-class scatter matrices Y×D×D) of labelled rows."""
    counts = [sum(1 for label, _ in rows if label == c) for c in range(target_classes)]
    means = [[sum(x[j] for label, x in rows if label == c) / counts[c] if counts[c] else 0.0
              for j in range(feature_width)] for c in range(target_classes)]
    scatters = [[[sum((x[i] - means[c][i]) * (x[j] - means[c][j]) for label, x in rows if label == c)
                  for j in range(feature_width)] for i in range(feature_width)] for c in range(target_classes)]
    return counts, means, scatters


def statistic_sections(rows, target_classes, feature_width) -> dict[int, list[float]]:
    """Sections 2, 3 and 4 of a partial over `rows` (docs/wire-format.md, "Feature statistics")."""
    counts, means, scatters = row_statistics(rows, target_classes, feature_width)
    head = [float(n) for n in counts] + [value for mean in means for value in mean]
    squares = [scatter[j][j] for scatter in scatters for j in range(feature_width)]
    pooled = [[sum(scatter[i][j] for scatter in scatters) for j in range(feature_width)] for i in range(feature_width)]
    return {
        SECTION_CLASS_VARIANCES: head + squares,
        SECTION_CLASS_SCATTERS: head + [value for scatter in scatters for value in upper_triangle(scatter)],
        SECTION_WITHIN_CLASS_SCATTER: head + upper_triangle(pooled),
    }


STATISTIC_SECTIONS = statistic_sections(STATISTIC_ROWS, 2, 2)
# Rows as an SFDA mixing task might produce them (the values are what matter here, not the mixing).
MIXED_ROWS = [(0, (1.5, 0.5)), (0, (2.5, 2.5)), (1, (-3.5, 1.5)), (1, (-2.5, 2.5))]
MIXED_SECTIONS = statistic_sections(MIXED_ROWS, 2, 2)

# An SFDA fit of K = 2 present classes, labels 0 and 2 (Y = 3), D = 2: a 6 × 3 matrix.
SFDA_FIT = sfda_fit_matrix(
    coefficients=[[0.5, -1.25], [-0.5, 1.25]], intercepts=[-0.75, -1.5],
    other_means=[[-3.0, 2.0], [2.0, 1.5]], labels=[0, 2], centre=[-0.5, 1.75], shrinkage=0.0625)


def fixtures() -> dict[str, bytes]:
    return {
        # The worked example of the document: 2 rows × 3 classes of float32.
        "chunk_f32.bin": chunk_frame(
            "r1", "m", "d", shard=0, shard_count=1, first_row=0, source_classes=3,
            target_classes=2, dtype=DTYPE_FLOAT32, labels=[0, 1],
            rows=[[0.5, 0.25, 0.25], [0.125, 0.625, 0.25]]),
        # Longer names (3 bytes of header padding), shard 1 of 2, float64.
        "chunk_f64.bin": chunk_frame(
            "r1", "model-b", "d", shard=1, shard_count=2, first_row=2, source_classes=3,
            target_classes=3, dtype=DTYPE_FLOAT64, labels=[2, 0],
            rows=[[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]]),
        # 3 rows, so the labels (12 bytes) are followed by 4 bytes of padding; float16.
        "chunk_f16.bin": chunk_frame(
            "r1", "m", "d", shard=0, shard_count=1, first_row=4, source_classes=3,
            target_classes=2, dtype=DTYPE_FLOAT16, labels=[1, 1, 0],
            rows=[[0.25, 0.5, 0.25], [1.0, 0.0, 0.0], [0.125, 0.375, 0.5]]),
        # Non-ASCII and a slash in the names; an offset above 2^32.
        "manifest.bin": manifest_frame(
            "r1", "vit-b/16", "café", shard=1, shard_count=2, source_classes=3, target_classes=3,
            shard_rows=5, total_chunks=2, part_index=0, part_count=1,
            chunks=[(0, 3, 2, 17), (3, 2, 5, 0x0102030405)], eep_accuracy=True),
        # Part 1 of 2 of a Y=2 × Z=3 partial; chunks listed unsorted (the id sorts them).
        "partial.bin": partial_frame(
            "r1", target_classes=2, source_classes=3, sample_count=5,
            chunks=[(1, 3, 2), (0, 0, 2)], part_index=1, part_count=2, cell_start=3,
            joint_sums=[0.5, 1.25, 2.0], argmax_counts=[1, 0, 3], model="vit-b/16", dataset="café"),
        # The same part as an older worker wrote it: version 1, no names.
        "partial_v1.bin": partial_frame(
            "r1", target_classes=2, source_classes=3, sample_count=5,
            chunks=[(1, 3, 2), (0, 0, 2)], part_index=1, part_count=2, cell_start=3,
            joint_sums=[0.5, 1.25, 2.0], argmax_counts=[1, 0, 3]),
        # The same part again as workers write it now: version 3, a run without features.
        "partial_v3.bin": partial_v3_frame(
            "r1", "vit-b/16", "café", target_classes=2, source_classes=3, feature_width=0, sample_count=5,
            chunks=PARTIAL_CHUNKS, part_index=1, part_count=2, cell_start=3, section=SECTION_JOINT,
            joint_sums=[0.5, 1.25, 2.0], argmax_counts=[1, 0, 3]),
        # A run with D = 2 features: Y·Z = 6 joint cells in part 0 (section 0), L = 14 feature
        # statistics in parts 1 (values 0..<7) and 2 (values 7..<14) of section 1; 3 parts in all.
        "partial_v3_joint.bin": partial_v3_frame(
            "r1", "vit-b/16", "café", target_classes=2, source_classes=3, feature_width=2, sample_count=5,
            chunks=PARTIAL_CHUNKS, part_index=0, part_count=3, cell_start=0, section=SECTION_JOINT,
            joint_sums=[0.5, 1.25, 2.0, 0.25, 0.0, 1.0], argmax_counts=[1, 0, 3, 0, 1, 0]),
        "partial_v3_features.bin": partial_v3_frame(
            "r1", "vit-b/16", "café", target_classes=2, source_classes=3, feature_width=2, sample_count=5,
            chunks=PARTIAL_CHUNKS, part_index=2, part_count=3, cell_start=7, section=SECTION_FEATURE_STATISTICS,
            feature_values=[7.0, -0.5, 0.125, 3.0, 0.001, 2.5, -4.0]),
        # Version 2 with features: θ of float16 (3 rows × 3: 18 bytes, then 6 bytes of padding
        # before the features), 4 features a row of float32; 4 bytes of padding after the fixed
        # fields and 4 after the labels.
        "chunk_features_f32.bin": chunk_frame(
            "r1", "m", "d", shard=0, shard_count=1, first_row=0, source_classes=3,
            target_classes=2, dtype=DTYPE_FLOAT16, labels=[0, 1, 1],
            rows=[[0.5, 0.25, 0.25], [0.125, 0.625, 0.25], [0.0, 0.0, 1.0]],
            features=[[1.5, -2.0, 0.0, 3.25], [0.5, 0.25, -0.125, 8.0], [-1.0, 2.0, 4.0, -0.5]],
            feature_dtype=DTYPE_FLOAT32),
        # θ of float64, 3 features a row of float16; no padding after the labels or θ.
        "chunk_features_f16.bin": chunk_frame(
            "r1", "model-b", "d", shard=1, shard_count=2, first_row=2, source_classes=3,
            target_classes=3, dtype=DTYPE_FLOAT64, labels=[2, 0],
            rows=[[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]],
            features=[[0.5, -1.0, 2.0], [0.0, 1.5, -0.25]], feature_dtype=DTYPE_FLOAT16),
        # Version 3, features alone: the features of chunk_features_f32.bin without θ; 4 bytes of
        # padding after the fixed fields (feature_dtype ends at 51) and 4 after the labels.
        "chunk_features_only_f32.bin": features_only_chunk_frame(
            "r1", "m", "d", shard=0, shard_count=1, first_row=0, target_classes=2, labels=[0, 1, 1],
            features=[[1.5, -2.0, 0.0, 3.25], [0.5, 0.25, -0.125, 8.0], [-1.0, 2.0, 4.0, -0.5]],
            feature_dtype=DTYPE_FLOAT32),
        # Version 3 again: shard 1 of 2 from row 2, 2 labels (no padding after them), float16.
        "chunk_features_only_f16.bin": features_only_chunk_frame(
            "r1", "model-b", "d", shard=1, shard_count=2, first_row=2, target_classes=3, labels=[2, 0],
            features=[[0.5, -1.0, 2.0], [0.0, 1.5, -0.25]], feature_dtype=DTYPE_FLOAT16),
        # Version 2 with Z = 0: a run of features alone, D = 768 (a CLIP ViT-B/16 encoder).
        "manifest_features_only.bin": manifest_frame(
            "r1", "clip-vit-b/16", "café", shard=0, shard_count=1, source_classes=0, target_classes=37,
            shard_rows=300, total_chunks=2, part_index=0, part_count=1,
            chunks=[(0, 256, 1, 4), (256, 44, 6, 1 << 40)], feature_width=768),
        # A partial of a run of features alone (Z = 0, D = 2, Y = 2): no joint cells, so the L = 14
        # feature statistics are parts 0 (values 0..<7) and 1 (values 7..<14) of 2; this is part 1.
        "partial_v3_features_only.bin": partial_v3_frame(
            "r1", "vit-b/16", "café", target_classes=2, source_classes=0, feature_width=2, sample_count=5,
            chunks=PARTIAL_CHUNKS, part_index=1, part_count=2, cell_start=7, section=SECTION_FEATURE_STATISTICS,
            feature_values=[7.0, -0.5, 0.125, 3.0, 0.001, 2.5, -4.0]),
        # Version 2: D = 2,048 after the flags (EEP accuracy off), an offset above 2^32.
        "manifest_features.bin": manifest_frame(
            "r1", "vit-b/16", "café", shard=0, shard_count=1, source_classes=1000, target_classes=37,
            shard_rows=300, total_chunks=2, part_index=0, part_count=1,
            chunks=[(0, 248, 3, 9), (248, 52, 0, 1 << 40)], feature_width=2048),
        "task_pass2.bin": task_frame("r1", PASS_EEP, conditional=[(0, 7), (1, 8)], chunks=PASS2_CHUNKS),
        "task_pass2_accuracy.bin": task_frame("r1", PASS_EEP_ACCURACY, conditional=[(0, 7)], chunks=PASS2_CHUNKS),
        "task_repair.bin": task_frame("r1", PASS_REPAIR, conditional=[], chunks=[(1, 2, 2, 4, 12)]),
        # Part 0 of 2 of a Y=2 × Z=3 conditional: cells 0..<4.
        "conditional.bin": conditional_frame(
            "r1", target_classes=2, source_classes=3, part_index=0, part_count=2, cell_start=0,
            values=[0.5, 0.25, 1.0, 0.5]),
        "task_result.bin": task_result_frame("r1", PASS2_TASK_ID, sample_count=4, log_eep_sum=-2.5, hits=3),
        # Section 2 (per-class variances) of a run with Z = 3 and D = 2, in one part. For Y = 2 and
        # D = 2 a worker gathers the moments, the per-class variances and the per-class scatters:
        # part 2 of 4 (joint cells 0, moments 1, variances 2, scatters 3); all 10 values of
        # STATISTIC_ROWS.
        "partial_v3_class_variances.bin": partial_v3_frame(
            "r1", "vit-b/16", "café", target_classes=2, source_classes=3, feature_width=2, sample_count=4,
            chunks=PARTIAL_CHUNKS, part_index=2, part_count=4, cell_start=0, section=SECTION_CLASS_VARIANCES,
            feature_values=STATISTIC_SECTIONS[SECTION_CLASS_VARIANCES]),
        # Section 3 (per-class scatter matrices) of a run of features alone (Z = 0): part 2 of 3
        # (moments 0, variances 1, scatters 2); all 12 values.
        "partial_v3_class_scatters.bin": partial_v3_frame(
            "r1", "vit-b/16", "café", target_classes=2, source_classes=0, feature_width=2, sample_count=4,
            chunks=PARTIAL_CHUNKS, part_index=2, part_count=3, cell_start=0, section=SECTION_CLASS_SCATTERS,
            feature_values=STATISTIC_SECTIONS[SECTION_CLASS_SCATTERS]),
        # Section 4 (the within-class scatter), which a worker sends in place of section 3 when the
        # per-class scatters are beyond their bound (Y·D² > 2^26); shown at Y = 2, D = 2 so that
        # its values can be read. Cut with a payload budget of 48 bytes (a message limit of
        # 4,096 + 16·2 + 48): 2 joint parts, 3 of moments, 2 of variances, 2 of the within-class
        # scatter, 9 in all; this is the last, values 6..<9 of 9 (the pooled upper triangle).
        "partial_v3_within_class_scatter.bin": partial_v3_frame(
            "r1", "vit-b/16", "café", target_classes=2, source_classes=3, feature_width=2, sample_count=4,
            chunks=PARTIAL_CHUNKS, part_index=8, part_count=9, cell_start=6, section=SECTION_WITHIN_CLASS_SCATTER,
            feature_values=STATISTIC_SECTIONS[SECTION_WITHIN_CLASS_SCATTER][6:]),
        # SFDA's passes over the pass-2 chunks: mixing reads the first fit's 2 parts, scoring
        # the first fit's 2 parts and then the second fit's 1.
        "task_sfda_mix.bin": task_frame("r1", PASS_SFDA_MIX, conditional=[(2, 40), (2, 41)], chunks=PASS2_CHUNKS),
        "task_sfda_score.bin": task_frame(
            "r1", PASS_SFDA_SCORE, conditional=[(2, 40), (2, 41), (3, 50)], chunks=PASS2_CHUNKS),
        # One part of an SFDA fit: the whole 6 × 3 matrix of SFDA_FIT.
        "conditional_sfda_fit.bin": conditional_frame(
            "r1", target_classes=SFDA_FIT[0], source_classes=SFDA_FIT[1], part_index=0, part_count=1, cell_start=0,
            values=SFDA_FIT[2]),
        # The mixing task's result, version 2: part 1 of 2 of the within-class scatter of
        # MIXED_ROWS (Y = 2, D = 2: 9 values), values 6..<9; 4 bytes of padding after the matrix part.
        "task_result_sfda_mix.bin": task_result_frame(
            "r1", SFDA_MIX_TASK_ID, sample_count=4, log_eep_sum=0.0, hits=0,
            statistics=(2, 2, 1, 2, 6, MIXED_SECTIONS[SECTION_WITHIN_CLASS_SCATTER][6:])),
        # The scoring task's result, version 1: log_eep_sum carries Σ of the own-class probabilities.
        "task_result_sfda_score.bin": task_result_frame("r1", SFDA_SCORE_TASK_ID, sample_count=4, log_eep_sum=3.25, hits=0),
        "chunk_rejected.bin": chunk_rejected_frame(
            "r1", "m", "d", shard=0, first_row=0, row_count=2, reason="row 1: sums to 1.5 (±0.001)"),
        "run_marker_pass2.bin": run_marker_frame("r1", MARKER_PASS2_ISSUED, [PASS2_TASK_ID, 1]),
        "run_marker_closed.bin": run_marker_frame("r1", MARKER_CLOSED),
        "run_marker_sfda_mix.bin": run_marker_frame(
            "r1", MARKER_TASKS_ISSUED, [SFDA_MIX_TASK_ID, 2], pass_code=PASS_SFDA_MIX),
        "partition_barrier.bin": partition_marker_frame(PARTITION_BARRIER, 0xFEEDFACECAFEBEEF),
        "partition_dead_lettered.bin": partition_marker_frame(PARTITION_DEAD_LETTERED, 1234567),
        # Issue 21: two sampled rows of a chunk, for the estimate while pass 1 streams.
        "row_sample.bin": row_sample_frame("r1", "resnet50", "cifar10", 1, 1000, 250, 3, [7, 191], [2, 0],
                                           [0.5, 0.25, 0.25, 0.125, 0.875, 0.0]),
    }


def hex_dump(data: bytes) -> str:
    lines = []
    for start in range(0, len(data), 16):
        row = data[start:start + 16]
        hexes = " ".join(f"{byte:02x}" for byte in row)
        text = "".join(chr(byte) if 0x20 <= byte < 0x7F else "." for byte in row)
        lines.append(f"{start:04x}  {hexes:<47}  {text}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    frames = fixtures()
    if argv[1:2] == ["--dump"]:
        for name in argv[2:]:
            print(f"{name} ({len(frames[name])} bytes)\n{hex_dump(frames[name])}")
        return 0
    if argv[1:2] == ["--check"]:
        stale = [name for name, data in frames.items()
                 if not (HERE / name).is_file() or (HERE / name).read_bytes() != data]
        for name in stale:
            print(f"{name} differs from make_fixtures.py", file=sys.stderr)
        return 1 if stale else 0
    for name, data in frames.items():
        (HERE / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")
    print(f"pass-2 task id: 0x{PASS2_TASK_ID:016x}")
    print(f"SFDA mixing task id: 0x{SFDA_MIX_TASK_ID:016x}, scoring task id: 0x{SFDA_SCORE_TASK_ID:016x}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
