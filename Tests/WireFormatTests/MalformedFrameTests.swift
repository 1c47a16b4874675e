import Foundation
import LEEPCore
import Testing
import WireFormat

/// Every malformed input is refused with the `FrameError` docs/wire-format.md names, and none
/// makes the decoder crash. The frames are the golden fixtures with bytes patched at the
/// offsets the document gives (checked first by `fixtureOffsetsAreAsDocumented`).
@Suite struct MalformedFrameTests {
    // MARK: Header

    @Test func emptyInputIsTruncatedHeader() {
        #expect(decodeError([]) == .truncated(field: "header", needed: 8, available: 0))
    }

    @Test func shorterThanAHeaderIsTruncated() throws {
        let chunk = try Fixtures.bytes("chunk_f32.bin")
        for count in 1..<8 {
            #expect(decodeError(Array(chunk.prefix(count))) == .truncated(field: "header", needed: 8, available: count))
        }
    }

    @Test func randomBytesAreRejected() {
        var random = SplitMix64(seed: 0x1EE9)
        for _ in 0..<2000 {
            let count = Int.random(in: 0...300, using: &random)
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
            if count < 8 {
                #expect(decodeError(bytes) == .truncated(field: "header", needed: 8, available: count))
            } else if Array(bytes.prefix(4)) != WireFormat.magic {
                #expect(decodeError(bytes) == .badMagic)
            }
        }
    }

    /// Valid headers of every version a kind has, followed by random bodies: every kind's
    /// decoder must refuse or accept without crashing, and what it accepts must encode back to
    /// the same bytes.
    @Test(arguments: 1...9)
    func randomBodiesNeverCrash(kind: Int) throws {
        let frameKind = try #require(FrameKind(rawValue: UInt8(kind)))
        var random = SplitMix64(seed: UInt64(kind) * 7919)
        for version in 1...WireFormat.version(of: frameKind) {
            for _ in 0..<300 {
                let count = Int.random(in: 0...120, using: &random)
                var bytes = WireFormat.magic + [version, UInt8(kind), 0, 0]
                bytes += (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
                expectCanonicalOrRejected(bytes)
            }
        }
    }

    /// Every single-byte change of every fixture: refused, or decoded to values that encode
    /// back to exactly the changed bytes (an older partial: to a version-3 frame of the same
    /// values). Never a crash.
    @Test(arguments: Golden.names + Golden.olderVersions)
    func singleByteMutationsNeverCrash(name: String) throws {
        let fixture = try Fixtures.bytes(name)
        for offset in fixture.indices {
            let original = fixture[offset]
            for value in Set([0x00, 0x01, 0x7F, 0x80, 0xFF, original ^ 0x01, original &+ 1]) {
                guard value != original else { continue }
                var mutated = fixture
                mutated[offset] = value
                expectCanonicalOrRejected(mutated)
            }
        }
    }

    @Test func wrongMagic() throws {
        let chunk = try Fixtures.bytes("chunk_f32.bin")
        for offset in 0..<4 {
            #expect(decodeError(chunk.patching(offset, [chunk[offset] ^ 0x20])) == .badMagic)
        }
        #expect(decodeError(Array("LPSU".utf8) + chunk.dropFirst(4)) == .badMagic)
        #expect(decodeError([UInt8](repeating: 0, count: 80)) == .badMagic)
    }

    /// Version 0, and any version above the kind's newest: 3 for chunk and partial, 2 for
    /// manifest, 1 for the others.
    @Test(arguments: [
        ("chunk_f32.bin", UInt8(0)), ("chunk_f32.bin", 4), ("chunk_features_f32.bin", 4), ("chunk_features_only_f32.bin", 4),
        ("chunk_f32.bin", 255), ("manifest.bin", 3), ("manifest_features.bin", 4), ("manifest_features_only.bin", 3),
        ("partial_v3.bin", 4), ("partial_v3_features_only.bin", 4), ("partial.bin", 0), ("conditional.bin", 2),
        ("task_pass2.bin", 2), ("task_result.bin", 3), ("partition_barrier.bin", 2),
        ("partial_v3_class_scatters.bin", 4), ("task_sfda_score.bin", 2), ("conditional_sfda_fit.bin", 2),
        ("task_result_sfda_mix.bin", 3), ("task_result_sfda_score.bin", 3), ("run_marker_sfda_mix.bin", 2),
    ])
    func wrongVersion(name: String, version: UInt8) throws {
        #expect(decodeError(try Fixtures.bytes(name).patching(4, [version])) == .unsupportedVersion(version))
    }

    @Test func unsupportedVersionNamesWhatThisBuildReads() {
        #expect(FrameError.unsupportedVersion(9).description
            == "unsupported frame version 9 (this build reads versions 1 to 3 of chunk and partial frames, 1 to 2 of manifest and task-result frames, 1 of the other kinds)")
    }

    /// A frame relabelled with another version of its kind is read in that version's layout,
    /// and refused there.
    @Test func relabelledVersionsAreRefused() throws {
        // Version 1 → 2: feature_width is read from the padding and the first label (all zero).
        #expect(decodeError(try Fixtures.bytes("chunk_f32.bin").patching(4, [2]))
            == .invalidValue(field: "feature_width", reason: "must be at least 1"))
        // Version 2 → 1: the padding after dtype is read where feature_width (4) is.
        #expect(decodeError(try Fixtures.bytes("chunk_features_f32.bin").patching(4, [1])) == .nonZeroPadding)
        #expect(decodeError(try Fixtures.bytes("manifest.bin").patching(4, [2])) != nil)
        #expect(decodeError(try Fixtures.bytes("manifest_features.bin").patching(4, [1])) != nil)
        for version: UInt8 in [1, 2] {
            #expect(decodeError(try Fixtures.bytes("partial_v3_joint.bin").patching(4, [version])) != nil)
        }
        #expect(decodeError(try Fixtures.bytes("partial.bin").patching(4, [3])) != nil)
        // Chunks with θ relabelled as features alone (version 3) declare a Z that must be 0; a
        // chunk of features alone relabelled as version 1 or 2 declares a Z of 0 they refuse.
        for name in ["chunk_f32.bin", "chunk_features_f32.bin"] {
            #expect(decodeError(try Fixtures.bytes(name).patching(4, [3])) == .invalidValue(
                field: "source_classes", reason: "3 in a version-3 chunk, which carries features alone: must be 0"), "\(name)")
        }
        let featuresAlone = try Fixtures.bytes("chunk_features_only_f32.bin")
        #expect(decodeError(featuresAlone.patching(4, [2])) == .invalidValue(
            field: "source_classes", reason: "0 in a version-2 chunk: a chunk of features alone is version 3"))
        #expect(decodeError(featuresAlone.patching(4, [1])) == .invalidValue(field: "source_classes", reason: Self.noSoftmaxNoFeatures))
        #expect(decodeError(try Fixtures.bytes("manifest_features_only.bin").patching(4, [1]))
            == .invalidValue(field: "source_classes", reason: Self.noSoftmaxNoFeatures))
        for version: UInt8 in [1, 2] {
            #expect(decodeError(try Fixtures.bytes("partial_v3_features_only.bin").patching(4, [version])) != nil)
        }
    }

    /// Why a frame that carries neither softmax outputs (Z = 0) nor features is refused.
    static let noSoftmaxNoFeatures =
        "0 without features: a run sends softmax outputs (source_classes ≥ 1), features (feature_width ≥ 1) or both"

    @Test(arguments: [UInt8(0), 11, 255])
    func unknownKind(kind: UInt8) throws {
        let chunk = try Fixtures.bytes("chunk_f32.bin")
        #expect(decodeError(chunk.patching(5, [kind])) == .unknownKind(kind))
    }

    /// A row sample names rows of its chunk once each, in order, with labels and softmax
    /// values that can be rows: anything else is refused with the field.
    @Test func rowSamplesOfRowsThatCannotBeAreRefused() throws {
        func sample(rows: [UInt32] = [7, 191], labels: [Int32] = [2, 0], values: [Double] = [0.5, 0.25, 0.25, 0.125, 0.875, 0]) -> [UInt8] {
            RowSampleFrame(
                run: RunIdentity(id: "r1", model: "m", dataset: "d"), chunk: ChunkID(shard: 0, firstRow: 0, rowCount: 250),
                sourceClasses: 3, rows: rows, labels: labels, probabilities: values
            ).encoded()
        }
        #expect(decodeError(sample()) == nil)
        func field(_ bytes: [UInt8]) -> String? {
            guard case .invalidValue(let field, _)? = decodeError(bytes) else { return nil }
            return field
        }
        #expect(field(sample(rows: [191, 7])) == "rows", "not increasing")
        #expect(field(sample(rows: [7, 7])) == "rows", "a row twice")
        #expect(field(sample(rows: [7, 250])) == "rows", "past the chunk")
        #expect(field(sample(labels: [2, -1])) == "labels")
        #expect(field(sample(values: [0.5, .nan, 0.25, 0.125, 0.875, 0])) == "probabilities")
        #expect(field(sample(values: [0.5, 0.25, 0.25, 0.125, 0.875, -0.5])) == "probabilities")
        #expect(field(sample(rows: [], labels: [], values: [])) == "row_count", "no row")
        let whole = sample()
        #expect(decodeError(Array(whole.dropLast(8))) != nil, "a value short")
    }

    @Test func nonZeroReserved() throws {
        for name in Golden.names + Golden.olderVersions {
            let frame = try Fixtures.bytes(name)
            #expect(decodeError(frame.patching(6, [1])) == .invalidValue(field: "reserved", reason: "must be 0"))
            #expect(decodeError(frame.patching(7, [0x80])) == .invalidValue(field: "reserved", reason: "must be 0"))
        }
    }

    // MARK: Truncation and length

    @Test func chunkTruncatedAtEveryLengthIsRefused() throws {
        let chunk = try Fixtures.bytes("chunk_f32.bin")
        for count in 0..<chunk.count {
            #expect(decodeError(Array(chunk.prefix(count))) != nil, "a \(count)-byte prefix was accepted")
        }
        // The field named is the one cut short (offsets: docs/wire-format.md, worked example).
        let expected: [Int: FrameError] = [
            8: .truncated(field: "run", needed: 2, available: 0),
            9: .truncated(field: "run", needed: 2, available: 1),
            10: .truncated(field: "run", needed: 2, available: 0),
            11: .truncated(field: "run", needed: 2, available: 1),
            13: .truncated(field: "model", needed: 2, available: 1),
            14: .truncated(field: "model", needed: 1, available: 0),
            16: .truncated(field: "dataset", needed: 2, available: 1),
            17: .truncated(field: "dataset", needed: 1, available: 0),
            18: .truncated(field: "shard", needed: 4, available: 0),
            24: .truncated(field: "shard_count", needed: 4, available: 2),
            30: .truncated(field: "first_row", needed: 8, available: 4),
            34: .truncated(field: "row_count", needed: 4, available: 0),
            40: .truncated(field: "source_classes", needed: 4, available: 2),
            45: .truncated(field: "target_classes", needed: 4, available: 3),
            46: .truncated(field: "dtype", needed: 1, available: 0),
            47: .truncated(field: "padding", needed: 1, available: 0),
            48: .truncated(field: "labels", needed: 8, available: 0),
            52: .truncated(field: "labels", needed: 8, available: 4),
            56: .invalidValue(field: "probabilities", reason: "2 rows × 3 classes × 4 bytes do not match the 0 bytes left"),
            79: .invalidValue(field: "probabilities", reason: "2 rows × 3 classes × 4 bytes do not match the 23 bytes left"),
        ]
        for (count, error) in expected.sorted(by: { $0.key < $1.key }) {
            #expect(decodeError(Array(chunk.prefix(count))) == error, "\(count)-byte prefix")
        }
        // Cut inside the padding that follows the labels (3 labels end at 60).
        let f16 = try Fixtures.bytes("chunk_f16.bin")
        for count in 60..<64 {
            #expect(decodeError(Array(f16.prefix(count))) == .truncated(field: "padding", needed: 1, available: 0))
        }
    }

    @Test(arguments: Golden.names + Golden.olderVersions)
    func everyFixtureTruncatedAtEveryLengthIsRefused(name: String) throws {
        let frame = try Fixtures.bytes(name)
        for count in 0..<frame.count {
            #expect(decodeError(Array(frame.prefix(count))) != nil, "\(name): a \(count)-byte prefix was accepted")
        }
    }

    @Test func trailingBytes() throws {
        for name in ["manifest.bin", "manifest_features.bin", "task_pass2.bin", "task_repair.bin", "task_result.bin",
                     "chunk_rejected.bin", "run_marker_pass2.bin", "run_marker_closed.bin", "task_sfda_mix.bin",
                     "task_sfda_score.bin", "task_result_sfda_score.bin", "run_marker_sfda_mix.bin"]
        {
            let frame = try Fixtures.bytes(name)
            #expect(decodeError(frame + [0]) == .trailingBytes(1), "\(name)")
            #expect(decodeError(frame + [0, 0, 0, 0, 0, 0, 0, 0, 0]) == .trailingBytes(9), "\(name)")
        }
        // Frames ending in an array check its size against the bytes left instead.
        #expect(decodeError(try Fixtures.bytes("chunk_f32.bin") + [0, 0, 0, 0]) == .invalidValue(
            field: "probabilities", reason: "2 rows × 3 classes × 4 bytes do not match the 28 bytes left"))
        #expect(decodeError(try Fixtures.bytes("partial.bin") + [UInt8](repeating: 0, count: 16)) == .invalidValue(
            field: "cells", reason: "3 cells need 48 bytes, 64 left"))
        #expect(decodeError(try Fixtures.bytes("conditional.bin") + [UInt8](repeating: 0, count: 8)) == .invalidValue(
            field: "values", reason: "4 cells need 32 bytes, 40 left"))
        #expect(decodeError(try Fixtures.bytes("partial_v3_joint.bin") + [UInt8](repeating: 0, count: 16)) == .invalidValue(
            field: "cells", reason: "6 cells need 96 bytes, 112 left"))
        #expect(decodeError(try Fixtures.bytes("partial_v3_features.bin") + [UInt8](repeating: 0, count: 8)) == .invalidValue(
            field: "feature_values", reason: "7 values need 56 bytes, 64 left"))
    }

    // MARK: Features (chunk and manifest version 2, partial version 3)

    /// The feature byte count must be exact: one byte more or less is refused.
    @Test func featureBytesOffByOne() throws {
        let chunk = try Fixtures.bytes("chunk_features_f32.bin")
        #expect(decodeError(chunk + [0]) == .invalidValue(
            field: "features", reason: "3 rows × 4 features × 4 bytes do not match the 49 bytes left"))
        #expect(decodeError(Array(chunk.dropLast())) == .invalidValue(
            field: "features", reason: "3 rows × 4 features × 4 bytes do not match the 47 bytes left"))
        // feature_dtype f32 → f64 and → f16; feature_width 4 → 5.
        #expect(decodeError(chunk.patching(51, [3])) == .invalidValue(
            field: "features", reason: "3 rows × 4 features × 8 bytes do not match the 48 bytes left"))
        #expect(decodeError(chunk.patching(51, [1])) == .invalidValue(
            field: "features", reason: "3 rows × 4 features × 2 bytes do not match the 48 bytes left"))
        #expect(decodeError(chunk.patching(47, UInt32(5))) == .invalidValue(
            field: "features", reason: "3 rows × 5 features × 4 bytes do not match the 48 bytes left"))
        // Cut inside the padding between θ (ending at 90) and the features.
        for count in 90..<96 {
            #expect(decodeError(Array(chunk.prefix(count))) == .truncated(field: "padding", needed: 1, available: 0))
        }
        // θ longer than what is left (Z 3 → 100) is named before the features.
        #expect(decodeError(chunk.patching(38, UInt32(100))) == .invalidValue(
            field: "probabilities", reason: "3 rows × 100 classes × 2 bytes exceed the 72 bytes left"))
        #expect(decodeError(Array(chunk.prefix(80))) == .invalidValue(
            field: "probabilities", reason: "3 rows × 3 classes × 2 bytes exceed the 8 bytes left"))
    }

    @Test(arguments: [UInt8(0), 4, 255])
    func unknownFeatureDtype(code: UInt8) throws {
        #expect(decodeError(try Fixtures.bytes("chunk_features_f32.bin").patching(51, [code]))
            == .invalidValue(field: "feature_dtype", reason: "unknown code \(code)"))
        #expect(decodeError(try Fixtures.bytes("chunk_features_f16.bin").patching(57, [code]))
            == .invalidValue(field: "feature_dtype", reason: "unknown code \(code)"))
    }

    @Test func featureWidthOutOfRange() throws {
        let atLeastOne = FrameError.invalidValue(field: "feature_width", reason: "must be at least 1")
        let tooWide = FrameError.invalidValue(field: "feature_width", reason: "8193 exceeds the limit of 8192")
        for (name, offset) in [("chunk_features_f32.bin", 47), ("chunk_features_f16.bin", 53), ("manifest_features.bin", 66)] {
            let frame = try Fixtures.bytes(name)
            #expect(decodeError(frame.patching(offset, UInt32(0))) == atLeastOne, "\(name)")
            #expect(decodeError(frame.patching(offset, UInt32(8193))) == tooWide, "\(name)")
            #expect(decodeError(frame.patching(offset, UInt32.max))
                == .invalidValue(field: "feature_width", reason: "4294967295 exceeds the limit of 8192"), "\(name)")
        }
        // In a version-3 partial, 0 means no features (valid for joint cells), and the limit holds.
        #expect(decodeError(try Fixtures.bytes("partial_v3_joint.bin").patching(45, UInt32(0))) == nil)
        #expect(decodeError(try Fixtures.bytes("partial_v3_joint.bin").patching(45, UInt32(8193))) == tooWide)
        // D = 8,192 with Y = 20,000 would need 197,434,913 statistics.
        let manifest = try Fixtures.bytes("manifest_features.bin").patching(66, UInt32(8192)).patching(41, UInt32(20000))
        #expect(decodeError(manifest) == .invalidValue(
            field: "feature_width", reason: "8192 features and 20000 target classes make 327700000 statistics, beyond the limit of 134217728"))
        #expect(decodeError(try Fixtures.bytes("manifest_features.bin").patching(66, UInt32(8192))) == nil, "Y = 37 is fine")
    }

    @Test func sectionsOfAVersion3Partial() throws {
        let features = try Fixtures.bytes("partial_v3_features.bin")
        // Feature statistics in a partial without features.
        #expect(decodeError(features.patching(45, UInt32(0)))
            == .invalidValue(field: "section", reason: "feature statistics in a partial with feature_width 0"))
        for code: UInt8 in [5, 255] {
            #expect(decodeError(features.patching(109, [code])) == .invalidValue(field: "section", reason: "unknown section \(code)"))
        }
        // Sections 2 and 3 are known; their lengths are their statistics' (Y = 2, D = 2: 10 and 12).
        #expect(decodeError(features.patching(109, [2]))
            == .invalidValue(field: "cell_count", reason: "cells 7..<14 exceed the 10 per-class variances"))
        #expect(decodeError(features.patching(109, [3]))
            == .invalidValue(field: "cell_count", reason: "cells 7..<14 exceed the 12 per-class scatter matrices"))
        #expect(decodeError(Array(features.prefix(109))) == .truncated(field: "section", needed: 1, available: 0))
        // A range beyond the section's L = 14 values, or beyond its Y·Z = 6 cells.
        #expect(decodeError(features.patching(101, UInt32(8)))
            == .invalidValue(field: "cell_count", reason: "cells 8..<15 exceed the 14 feature moments"))
        #expect(decodeError(features.patching(105, UInt32(8)))
            == .invalidValue(field: "cell_count", reason: "cells 7..<15 exceed the 14 feature moments"))
        let joint = try Fixtures.bytes("partial_v3_joint.bin")
        #expect(decodeError(joint.patching(101, UInt32(1)))
            == .invalidValue(field: "cell_count", reason: "cells 1..<7 exceed the 6 of the matrix"))
        // Relabelled: the joint part's 96 bytes read as 6 feature values need 48; the features
        // part's 7 values as joint cells need 112.
        #expect(decodeError(joint.patching(109, [1]))
            == .invalidValue(field: "feature_values", reason: "6 values need 48 bytes, 96 left"))
        #expect(decodeError(features.patching(109, [0]))
            == .invalidValue(field: "cell_count", reason: "cells 7..<14 exceed the 6 of the matrix"))
        #expect(decodeError(features.patching(105, UInt32(6)))
            == .invalidValue(field: "feature_values", reason: "6 values need 48 bytes, 56 left"))
        #expect(decodeError(joint.patching(105, UInt32(5))) == .invalidValue(field: "cells", reason: "5 cells need 80 bytes, 96 left"))
        // A part index at or beyond the count over both sections.
        #expect(decodeError(features.patching(93, UInt32(3)))
            == .invalidValue(field: "part_index", reason: "3 is not below part_count 3"))
    }

    /// A run of features alone (Z = 0) is accepted only with features: a version-3 chunk, a
    /// version-2 manifest, a version-3 partial of feature statistics. Everything else is
    /// refused, naming the field.
    @Test func featuresAloneOnlyWithFeatures() throws {
        let chunk = try Fixtures.bytes("chunk_features_only_f32.bin")
        // Z in a version-3 chunk must be 0; D at least 1; the features exactly R·D·fsize bytes.
        #expect(decodeError(chunk.patching(38, UInt32(3))) == .invalidValue(
            field: "source_classes", reason: "3 in a version-3 chunk, which carries features alone: must be 0"))
        #expect(decodeError(chunk.patching(46, UInt32(0))) == .invalidValue(field: "feature_width", reason: "must be at least 1"))
        #expect(decodeError(chunk + [0]) == .invalidValue(
            field: "features", reason: "3 rows × 4 features × 4 bytes do not match the 49 bytes left"))
        #expect(decodeError(Array(chunk.dropLast())) == .invalidValue(
            field: "features", reason: "3 rows × 4 features × 4 bytes do not match the 47 bytes left"))
        #expect(decodeError(chunk.patching(50, [3])) == .invalidValue(
            field: "features", reason: "3 rows × 4 features × 8 bytes do not match the 48 bytes left"))
        for code: UInt8 in [0, 4, 255] {
            #expect(decodeError(chunk.patching(50, [code])) == .invalidValue(field: "feature_dtype", reason: "unknown code \(code)"))
        }
        // Z = 0 in the frames that carry no features: a chunk of version 1, a manifest of
        // version 1, a partial of any version without a feature width.
        #expect(decodeError(try Fixtures.bytes("chunk_f32.bin").patching(38, UInt32(0)))
            == .invalidValue(field: "source_classes", reason: Self.noSoftmaxNoFeatures))
        #expect(decodeError(try Fixtures.bytes("chunk_features_f32.bin").patching(38, UInt32(0))) == .invalidValue(
            field: "source_classes", reason: "0 in a version-2 chunk: a chunk of features alone is version 3"))
        #expect(decodeError(try Fixtures.bytes("manifest.bin").patching(37, UInt32(0)))
            == .invalidValue(field: "source_classes", reason: Self.noSoftmaxNoFeatures))
        #expect(decodeError(try Fixtures.bytes("manifest_features.bin").patching(37, UInt32(0))) == nil, "with D = 2,048")
        for name in ["partial.bin", "partial_v1.bin", "partial_v3.bin"] {
            let offset = name == "partial_v1.bin" ? 24 : 41
            #expect(decodeError(try Fixtures.bytes(name).patching(offset, UInt32(0)))
                == .invalidValue(field: "source_classes", reason: Self.noSoftmaxNoFeatures), "\(name)")
        }
        let partial = try Fixtures.bytes("partial_v3_features_only.bin")
        #expect(decodeError(partial.patching(45, UInt32(0))) == .invalidValue(field: "source_classes", reason: Self.noSoftmaxNoFeatures))
        // No joint cells in a partial of features alone, whatever their count.
        #expect(decodeError(partial.patching(109, [0])) == .invalidValue(
            field: "section", reason: "joint cells in a partial with source_classes 0"))
        #expect(decodeError(partial.patching(101, UInt32(0)).patching(105, UInt32(0)).patching(109, [0])) == .invalidValue(
            field: "section", reason: "joint cells in a partial with source_classes 0"))
        #expect(decodeError(partial.patching(101, UInt32(8))) == .invalidValue(
            field: "cell_count", reason: "cells 8..<15 exceed the 14 feature moments"))
        #expect(decodeError(try Fixtures.bytes("manifest_features_only.bin") + [0]) == .trailingBytes(1))
    }

    // MARK: Issue 19: statistic sections 2 to 4, SFDA's tasks, fits, results and markers

    /// A part of sections 2 to 4 must lie within its statistic's length for the partial's Y and
    /// D (Y = 2, D = 2: 10 per-class variances, 12 values of per-class scatters, 9 of the
    /// within-class scatter), and carry exactly `cell_count` float64 values. (Sections 2 and 3
    /// patched onto the section-1 fixture: `sectionsOfAVersion3Partial`.)
    @Test func statisticSectionsBeyondTheirLengths() throws {
        func beyond(_ a: Int, _ b: Int, _ whole: String) -> FrameError {
            .invalidValue(field: "cell_count", reason: "cells \(a)..<\(b) exceed the \(whole)")
        }
        let variances = try Fixtures.bytes("partial_v3_class_variances.bin")
        #expect(decodeError(variances.patching(105, UInt32(11))) == beyond(0, 11, "10 per-class variances"))
        #expect(decodeError(variances.patching(101, UInt32(1))) == beyond(1, 11, "10 per-class variances"))
        #expect(decodeError(variances.patching(37, UInt32(1))) == beyond(0, 10, "5 per-class variances"), "Y 2 → 1")
        let scatters = try Fixtures.bytes("partial_v3_class_scatters.bin")
        #expect(decodeError(scatters.patching(105, UInt32(13))) == beyond(0, 13, "12 per-class scatter matrices"))
        #expect(decodeError(scatters.patching(45, UInt32(1))) == beyond(0, 12, "6 per-class scatter matrices"), "D 2 → 1")
        let within = try Fixtures.bytes("partial_v3_within_class_scatter.bin")
        #expect(decodeError(within.patching(101, UInt32(7))) == beyond(7, 10, "9 within-class scatter"))
        #expect(decodeError(within.patching(101, UInt32.max)) == beyond(4_294_967_295, 4_294_967_298, "9 within-class scatter"))
        #expect(decodeError(within.patching(37, UInt32(1))) == beyond(6, 9, "6 within-class scatter"), "Y 2 → 1")
        #expect(decodeError(try Fixtures.bytes("partial_v3_features.bin").patching(109, [4])) == beyond(7, 14, "9 within-class scatter"))
        // Relabelled among the sections, a part is checked against its new section's length
        // only: which sections a partial should carry is not the decoder's to say.
        #expect(decodeError(variances.patching(109, [4])) == beyond(0, 10, "9 within-class scatter"))
        #expect(decodeError(scatters.patching(109, [2])) == beyond(0, 12, "10 per-class variances"))
        #expect(decodeError(variances.patching(109, [0])) == beyond(0, 10, "6 of the matrix"))
        #expect(decodeError(variances.patching(109, [3])) == nil, "10 values lie within the 12 of section 3")
        // Exactly cell_count float64 values.
        #expect(decodeError(within + [0]) == .invalidValue(field: "feature_values", reason: "3 values need 24 bytes, 25 left"))
        #expect(decodeError(Array(within.dropLast(8))) == .invalidValue(field: "feature_values", reason: "3 values need 24 bytes, 16 left"))
        #expect(decodeError(variances.patching(105, UInt32(9))) == .invalidValue(field: "feature_values", reason: "9 values need 72 bytes, 80 left"))
        #expect(decodeError(Array(scatters.prefix(112))) == .invalidValue(field: "feature_values", reason: "12 values need 96 bytes, 0 left"))
        // Statistics need a feature width; a partial of features alone has no joint cells.
        for fixture in [variances, within] {
            #expect(decodeError(fixture.patching(45, UInt32(0)))
                == .invalidValue(field: "section", reason: "feature statistics in a partial with feature_width 0"))
        }
        #expect(decodeError(scatters.patching(45, UInt32(0))) == .invalidValue(field: "source_classes", reason: Self.noSoftmaxNoFeatures))
        #expect(decodeError(scatters.patching(109, [0])) == .invalidValue(field: "section", reason: "joint cells in a partial with source_classes 0"))
        for code: UInt8 in [5, 6, 128] {
            #expect(decodeError(within.patching(109, [code])) == .invalidValue(field: "section", reason: "unknown section \(code)"))
        }
        #expect(decodeError(Array(variances.prefix(110))) == .truncated(field: "padding", needed: 1, available: 0))
    }

    /// Each statistic's length for the partial's Y and D is bounded (`WireFormat.maxFeatureValues`):
    /// the feature width refuses a shape whose planned statistics could not travel, and a
    /// section refuses a statistic the plan does not gather for its shape when it is too long.
    @Test func statisticSectionsBeyondTheValueLimit() throws {
        func shaped(_ name: String, classes: UInt32) throws -> [UInt8] {
            try Fixtures.bytes(name).patching(37, classes).patching(45, UInt32(4096))
        }
        // Y = 30,000, D = 4,096: the moments' L = 131,308,849 would fit, the class variances'
        // 245,790,000 do not: refused on the feature width, whatever the section.
        #expect(FeatureStatistics.flattenedCount(targetClasses: 30000, featureWidth: 4096) == 131_308_849)
        for name in ["partial_v3_class_variances.bin", "partial_v3_within_class_scatter.bin", "partial_v3_features.bin"] {
            #expect(decodeError(try shaped(name, classes: 30000)) == .invalidValue(
                field: "feature_width",
                reason: "4096 features and 30000 target classes make 245790000 statistics, beyond the limit of 134217728"), "\(name)")
        }
        // Y = 16, D = 4,096: the plan (moments, class variances, within-class scatter) fits; the
        // per-class scatters it does not gather would make 134,316,048 values, and a part of
        // them is refused by its section.
        #expect(decodeError(try shaped("partial_v3_class_scatters.bin", classes: 16)) == .invalidValue(
            field: "section",
            reason: "per-class scatter matrices of 16 classes and 4096 features make 134316048 values, beyond the limit of 134217728"))
        #expect(decodeError(try shaped("partial_v3_within_class_scatter.bin", classes: 16)) == nil)
        #expect(decodeError(try shaped("partial_v3_class_variances.bin", classes: 16)) == nil)
    }

    /// A version-2 task result carries a part of a within-class scatter of its Y and D, with
    /// D ≥ 1, and exactly `cell_count` float64 values after the padding.
    @Test func taskResultStatisticsAreChecked() throws {
        let result = try Fixtures.bytes("task_result_sfda_mix.bin")
        func beyond(_ a: Int, _ b: Int, _ count: Int) -> FrameError {
            .invalidValue(field: "cell_count", reason: "cells \(a)..<\(b) exceed the \(count) within-class scatter")
        }
        // Y = 2, D = 2: 9 values; Y = 1: 6; D = 1: 5.
        #expect(decodeError(result.patching(60, UInt32(7))) == beyond(7, 10, 9))
        #expect(decodeError(result.patching(64, UInt32(4))) == beyond(6, 10, 9))
        #expect(decodeError(result.patching(60, UInt32.max)) == beyond(4_294_967_295, 4_294_967_298, 9))
        #expect(decodeError(result.patching(44, UInt32(1))) == beyond(6, 9, 6))
        #expect(decodeError(result.patching(48, UInt32(1))) == beyond(6, 9, 5))
        // The shape: Y and D at least 1, D within its limit and with Y within the statistics' limit.
        #expect(decodeError(result.patching(48, UInt32(0))) == .invalidValue(field: "feature_width", reason: "must be at least 1"))
        #expect(decodeError(result.patching(48, UInt32(8193))) == .invalidValue(field: "feature_width", reason: "8193 exceeds the limit of 8192"))
        #expect(decodeError(result.patching(44, UInt32(20000)).patching(48, UInt32(8192))) == .invalidValue(
            field: "feature_width", reason: "8192 features and 20000 target classes make 327700000 statistics, beyond the limit of 134217728"))
        #expect(decodeError(result.patching(44, UInt32(0))) == .invalidValue(field: "target_classes", reason: "must be at least 1"))
        #expect(decodeError(result.patching(44, UInt32.max)) == .invalidValue(field: "target_classes", reason: "4294967295 is too large"))
        #expect(decodeError(result.patching(52, UInt32(2))) == .invalidValue(field: "part_index", reason: "2 is not below part_count 2"))
        // The values: truncated, too many, or fewer than the bytes left.
        #expect(decodeError(Array(result.dropLast())) == .invalidValue(field: "values", reason: "3 values need 24 bytes, 23 left"))
        #expect(decodeError(Array(result.prefix(72))) == .invalidValue(field: "values", reason: "3 values need 24 bytes, 0 left"))
        #expect(decodeError(result + [UInt8](repeating: 0, count: 8)) == .invalidValue(field: "values", reason: "3 values need 24 bytes, 32 left"))
        #expect(decodeError(result.patching(64, UInt32(2))) == .invalidValue(field: "values", reason: "2 values need 16 bytes, 24 left"))
        // Cut in the fixed fields, or in the padding (the matrix part ends at 68).
        #expect(decodeError(Array(result.prefix(44))) == .truncated(field: "target_classes", needed: 4, available: 0))
        #expect(decodeError(Array(result.prefix(50))) == .truncated(field: "feature_width", needed: 4, available: 2))
        #expect(decodeError(Array(result.prefix(60))) == .truncated(field: "cell_start", needed: 4, available: 0))
        for count in 68..<72 {
            #expect(decodeError(Array(result.prefix(count))) == .truncated(field: "padding", needed: 1, available: 0))
        }
        // The sums are checked as in version 1.
        #expect(decodeError(result.patching(20, UInt64(1) << 63)) == .invalidValue(field: "sample_count", reason: "9223372036854775808 is too large"))
        // Relabelled: version 1 ends after hits; version 2 needs the statistics.
        #expect(decodeError(result.patching(4, [1])) == .trailingBytes(52))
        #expect(decodeError(try Fixtures.bytes("task_result.bin").patching(4, [2])) == .truncated(field: "target_classes", needed: 4, available: 0))
    }

    /// Marker 4 records tasks of SFDA's passes (4 and 5) only.
    @Test(arguments: [UInt8(0), 1, 2, 3, 6, 255])
    func tasksIssuedMarkerOfAnotherPass(code: UInt8) throws {
        #expect(decodeError(try Fixtures.bytes("run_marker_sfda_mix.bin").patching(13, [code]))
            == .invalidValue(field: "pass", reason: "no marker records tasks of pass \(code)"))
    }

    @Test func tasksIssuedMarkerLayout() throws {
        let marker = try Fixtures.bytes("run_marker_sfda_mix.bin")
        #expect(decodeError(marker.patching(13, [5])) == nil, "SFDA's scoring pass")
        #expect(decodeError(marker.patching(14, UInt32(3))) == .countExceedsFrame(field: "task_count", count: 3, available: 16))
        #expect(decodeError(Array(marker.prefix(13))) == .truncated(field: "pass", needed: 1, available: 0))
        #expect(decodeError(Array(marker.prefix(16))) == .truncated(field: "task_count", needed: 4, available: 2))
        #expect(decodeError(Array(marker.prefix(30))) == .countExceedsFrame(field: "task_count", count: 2, available: 12))
        // Marker 1 read where marker 4 is: the pass byte and task_count's first 3 bytes make its count.
        #expect(decodeError(marker.patching(12, [1])) != nil)
    }

    /// SFDA's tasks need their fits' parts, and their ids hash their pass.
    @Test func sfdaTasksNeedTheirFits() throws {
        let chunk = LocatedChunk(id: ChunkID(shard: 0, firstRow: 0, rowCount: 1), location: RecordLocation(partition: 0, offset: 0))
        for pass in [TaskFrame.Pass.sfdaMix, .sfdaScore] {
            #expect(decodeError(TaskFrame(run: "r1", pass: pass, conditional: [], chunks: [chunk]).encoded())
                == .invalidValue(
                    field: "conditional_parts",
                    reason: "a task of pass \(pass.rawValue) needs the tables it reads (the conditional or SFDA's fits)"), "\(pass)")
        }
        let mismatch = FrameError.invalidValue(field: "task_id", reason: "does not match the run, pass and chunks")
        let mix = try Fixtures.bytes("task_sfda_mix.bin")
        let score = try Fixtures.bytes("task_sfda_score.bin")
        for code: UInt8 in [1, 2, 3, 5] {
            #expect(decodeError(mix.patching(20, [code])) == mismatch, "pass 4 → \(code)")
        }
        #expect(decodeError(score.patching(20, [4])) == mismatch, "pass 5 → 4")
        #expect(decodeError(score.patching(21, UInt32(100))) == .countExceedsFrame(field: "conditional_parts", count: 100, available: 96))
        #expect(decodeError(score.patching(61, UInt32(3))) == .countExceedsFrame(field: "chunk_count", count: 3, available: 56))
        // The fits' locations are not hashed.
        #expect(decodeError(score.patching(49, Int32(9))) == nil && decodeError(score.patching(53, Int64(1) << 40)) == nil)
    }

    /// A conditional holding a fit is checked as any conditional: its cells within its
    /// (2K + 2) × (D + 1) shape. Whether the values make a fit is the worker's to check
    /// (`SFDA.Fit(matrix:…)`), not the decoder's.
    @Test func sfdaFitConditionalsAreCheckedAsMatrices() throws {
        let fit = try Fixtures.bytes("conditional_sfda_fit.bin")
        #expect(decodeError(fit.patching(12, UInt32(5)))
            == .invalidValue(field: "cell_count", reason: "cells 0..<18 exceed the 15 of the matrix"))
        #expect(decodeError(fit.patching(32, UInt32(17))) == .invalidValue(field: "values", reason: "17 cells need 136 bytes, 144 left"))
        // Labels out of order (2 then 0): still a valid frame.
        #expect(decodeError(fit.patching(40 + 8 * 8, Double(2).bitPattern).patching(40 + 8 * 11, Double(0).bitPattern)) == nil)
    }

    @Test func nonZeroPadding() throws {
        // After dtype (47 → 48), after 3 labels (60 → 64), after a longer header (53 → 56), after
        // a matrix part (36 → 40 in the conditional; the partial's part ends at 88: no padding).
        // With features: after feature_dtype (52 → 56, 58 → 64), after 3 labels (68 → 72), after
        // θ, before the features (90 → 96); after a version-3 partial's section byte (110 → 112).
        let cases: [(String, Int)] = [
            ("chunk_f32.bin", 47), ("chunk_f16.bin", 60), ("chunk_f16.bin", 63), ("chunk_f64.bin", 53), ("chunk_f64.bin", 55),
            ("conditional.bin", 36), ("conditional.bin", 39),
            ("chunk_features_f32.bin", 52), ("chunk_features_f32.bin", 55), ("chunk_features_f32.bin", 68),
            ("chunk_features_f32.bin", 71), ("chunk_features_f32.bin", 90), ("chunk_features_f32.bin", 95),
            ("chunk_features_f16.bin", 58), ("chunk_features_f16.bin", 63),
            ("partial_v3_joint.bin", 110), ("partial_v3_features.bin", 111),
            // Features alone: after feature_dtype (51 → 56), after 3 labels (68 → 72).
            ("chunk_features_only_f32.bin", 51), ("chunk_features_only_f32.bin", 55), ("chunk_features_only_f32.bin", 68),
            ("chunk_features_only_f32.bin", 71), ("partial_v3_features_only.bin", 110),
            // Sections 2 to 4 after the section byte (110 → 112); a fit's conditional after its
            // matrix part (36 → 40); a version-2 task result after its matrix part (68 → 72).
            ("partial_v3_class_variances.bin", 110), ("partial_v3_class_scatters.bin", 111),
            ("partial_v3_within_class_scatter.bin", 110), ("conditional_sfda_fit.bin", 36), ("conditional_sfda_fit.bin", 39),
            ("task_result_sfda_mix.bin", 68), ("task_result_sfda_mix.bin", 71),
        ]
        for (name, offset) in cases {
            let frame = try Fixtures.bytes(name)
            #expect(frame[offset] == 0, "\(name) byte \(offset) should be padding")
            #expect(decodeError(frame.patching(offset, [0x01])) == .nonZeroPadding, "\(name) byte \(offset)")
        }
    }

    @Test func arraySizesThatDoNotMatch() throws {
        let chunk = try Fixtures.bytes("chunk_f32.bin")
        // Z 3 → 2: 2 rows × 2 × 4 = 16 bytes expected, 24 there.
        #expect(decodeError(chunk.patching(38, UInt32(2))) == .invalidValue(
            field: "probabilities", reason: "2 rows × 2 classes × 4 bytes do not match the 24 bytes left"))
        // dtype f32 → f64 and → f16.
        #expect(decodeError(chunk.patching(46, [3])) == .invalidValue(
            field: "probabilities", reason: "2 rows × 3 classes × 8 bytes do not match the 24 bytes left"))
        #expect(decodeError(chunk.patching(46, [1])) == .invalidValue(
            field: "probabilities", reason: "2 rows × 3 classes × 2 bytes do not match the 24 bytes left"))
        // Z so large that R × Z × size would overflow: refused before any size is computed.
        #expect(decodeError(chunk.patching(38, UInt32.max)) == .invalidValue(
            field: "source_classes", reason: "4294967295 is too large"))
        // More rows than the frame has labels for.
        #expect(decodeError(chunk.patching(34, UInt32(100))) == .truncated(field: "labels", needed: 400, available: 32))
        // A partial part claiming 2 cells while carrying 3; a conditional part claiming 3 of 4.
        #expect(decodeError(try Fixtures.bytes("partial.bin").patching(101, UInt32(2))) == .invalidValue(
            field: "cells", reason: "2 cells need 32 bytes, 48 left"))
        #expect(decodeError(try Fixtures.bytes("conditional.bin").patching(32, UInt32(3))) == .invalidValue(
            field: "values", reason: "3 cells need 24 bytes, 32 left"))
    }

    @Test func reservedManifestFlags() throws {
        var bytes = try Fixtures.bytes("manifest.bin")
        bytes[65] = 0b11
        #expect(decodeError(bytes) == .invalidValue(field: "flags", reason: "reserved bits set in 3"))
    }

    @Test func countsBeyondTheFrame() throws {
        #expect(decodeError(try Fixtures.bytes("manifest.bin").patching(66, UInt32(3)))
            == .countExceedsFrame(field: "chunk_count", count: 3, available: 48))
        #expect(decodeError(try Fixtures.bytes("manifest.bin").patching(66, UInt32.max))
            == .countExceedsFrame(field: "chunk_count", count: 4_294_967_295, available: 48))
        #expect(decodeError(try Fixtures.bytes("partial.bin").patching(53, UInt32(7)))
            == .countExceedsFrame(field: "chunk_count", count: 7, available: 103))
        #expect(decodeError(try Fixtures.bytes("task_pass2.bin").patching(21, UInt32(100)))
            == .countExceedsFrame(field: "conditional_parts", count: 100, available: 84))
        #expect(decodeError(try Fixtures.bytes("task_pass2.bin").patching(49, UInt32(3)))
            == .countExceedsFrame(field: "chunk_count", count: 3, available: 56))
        #expect(decodeError(try Fixtures.bytes("run_marker_pass2.bin").patching(13, UInt32(3)))
            == .countExceedsFrame(field: "task_count", count: 3, available: 16))
    }

    // MARK: Text

    @Test func invalidUTF8IsRefusedByField() throws {
        let chunk = try Fixtures.bytes("chunk_f32.bin")
        #expect(decodeError(chunk.patching(10, [0xFF, 0xFE])) == .invalidText(field: "run"))
        #expect(decodeError(chunk.patching(10, [0xC0, 0xAF])) == .invalidText(field: "run"), "overlong encoding")
        #expect(decodeError(chunk.patching(14, [0x80])) == .invalidText(field: "model"), "lone continuation byte")
        #expect(decodeError(chunk.patching(17, [0xC3])) == .invalidText(field: "dataset"), "cut-off sequence")
        // A UTF-16 surrogate encoded in UTF-8 (ED A0 80) in the partial's 2-byte run, widened to 3.
        var partial = try Fixtures.bytes("partial.bin")
        partial.replaceSubrange(8..<12, with: [3, 0, 0xED, 0xA0, 0x80])
        #expect(decodeError(partial) == .invalidText(field: "run"))
        // "é" (C3 A9) in "café" cut after its first byte by a shorter length.
        let manifest = try Fixtures.bytes("manifest.bin")
        #expect(decodeError(manifest.patching(22, UInt16(4))) == .invalidText(field: "dataset"))
        let rejected = try Fixtures.bytes("chunk_rejected.bin")
        #expect(decodeError(rejected.patching(36, [0xFF])) == .invalidText(field: "reason"))
    }

    @Test func emptyRunIdIsRefusedWhereARunIdentityIsCarried() throws {
        let empty = RunIdentity(id: "", model: "m", dataset: "d")
        let chunk = ChunkValues(
            run: empty, shard: 0, shardCount: 1, firstRow: 0, sourceClasses: 1, targetClasses: 1, labels: [0],
            probabilities: .float32([1]))
        #expect(decodeError(chunk.encoded()) == .invalidValue(field: "run", reason: "empty"))
        let manifest = ManifestFrame(
            run: empty, shard: 0, shardCount: 1, sourceClasses: 1, targetClasses: 1, shardRows: 0, totalChunks: 0,
            partIndex: 0, partCount: 1, chunks: [])
        #expect(decodeError(manifest.encoded()) == .invalidValue(field: "run", reason: "empty"))
        let rejection = ChunkRejectedFrame(run: empty, chunk: ChunkID(shard: 0, firstRow: 0, rowCount: 1), reason: "r")
        #expect(decodeError(rejection.encoded()) == .invalidValue(field: "run", reason: "empty"))
    }

    // MARK: Values

    @Test func shardNotBelowShardCount() throws {
        let chunk = try Fixtures.bytes("chunk_f32.bin")
        #expect(decodeError(chunk.patching(18, UInt32(1)))
            == .invalidValue(field: "shard", reason: "1 is not below shard_count 1"))
        #expect(decodeError(chunk.patching(22, UInt32(0)))
            == .invalidValue(field: "shard", reason: "0 is not below shard_count 0"))
        let manifest = try Fixtures.bytes("manifest.bin")
        #expect(decodeError(manifest.patching(29, UInt32(2)))
            == .invalidValue(field: "shard", reason: "2 is not below shard_count 2"))
        #expect(decodeError(manifest.patching(29, UInt32.max))
            == .invalidValue(field: "shard", reason: "4294967295 is not below shard_count 2"))
    }

    @Test func partIndexNotBelowPartCount() throws {
        #expect(decodeError(try Fixtures.bytes("manifest.bin").patching(57, UInt32(1)))
            == .invalidValue(field: "part_index", reason: "1 is not below part_count 1"))
        #expect(decodeError(try Fixtures.bytes("manifest.bin").patching(61, UInt32(0)))
            == .invalidValue(field: "part_index", reason: "0 is not below part_count 0"))
        #expect(decodeError(try Fixtures.bytes("partial.bin").patching(89, UInt32(2)))
            == .invalidValue(field: "part_index", reason: "2 is not below part_count 2"))
        #expect(decodeError(try Fixtures.bytes("conditional.bin").patching(24, UInt32(0)))
            == .invalidValue(field: "part_index", reason: "0 is not below part_count 0"))
    }

    @Test func cellRangeBeyondTheMatrix() throws {
        // Y × Z = 2 × 3 = 6 cells in both.
        #expect(decodeError(try Fixtures.bytes("conditional.bin").patching(28, UInt32(3)))
            == .invalidValue(field: "cell_count", reason: "cells 3..<7 exceed the 6 of the matrix"))
        #expect(decodeError(try Fixtures.bytes("conditional.bin").patching(12, UInt32(1)))
            == .invalidValue(field: "cell_count", reason: "cells 0..<4 exceed the 3 of the matrix"))
        #expect(decodeError(try Fixtures.bytes("partial.bin").patching(97, UInt32(4)))
            == .invalidValue(field: "cell_count", reason: "cells 4..<7 exceed the 6 of the matrix"))
        #expect(decodeError(try Fixtures.bytes("partial.bin").patching(97, UInt32.max))
            == .invalidValue(field: "cell_count", reason: "cells 4294967295..<4294967298 exceed the 6 of the matrix"))
    }

    @Test func taskIDMustMatch() throws {
        let mismatch = FrameError.invalidValue(field: "task_id", reason: "does not match the run, pass and chunks")
        let task = try Fixtures.bytes("task_pass2.bin")
        #expect(decodeError(task.patching(12, [task[12] ^ 0x01])) == mismatch)
        // The run, the pass and every chunk id are hashed…
        #expect(decodeError(task.patching(11, [UInt8(ascii: "2")])) == mismatch, "run r1 → r2")
        #expect(decodeError(task.patching(53, UInt32(2))) == mismatch, "a chunk's shard")
        #expect(decodeError(task.patching(57, UInt64(1))) == mismatch, "a chunk's first_row")
        #expect(decodeError(task.patching(93, UInt32(3))) == mismatch, "a chunk's row_count")
        // …the pass too: the pass-2 fixture relabelled as a repair keeps its (now wrong) id.
        #expect(decodeError(task.patching(20, [1])) == mismatch, "pass 2 → 1")
        // Locations are not hashed: moving a chunk or a conditional part keeps the task valid.
        #expect(decodeError(task.patching(69, Int32(6))) == nil)
        #expect(decodeError(task.patching(29, Int64(99))) == nil)
    }

    @Test func pass2TaskWithoutConditionalIsRefused() {
        let task = TaskFrame(
            run: "r1", pass: .eep, conditional: [],
            chunks: [LocatedChunk(id: ChunkID(shard: 0, firstRow: 0, rowCount: 1), location: RecordLocation(partition: 0, offset: 0))])
        #expect(decodeError(task.encoded())
            == .invalidValue(field: "conditional_parts", reason: "a task of pass 2 needs the tables it reads (the conditional or SFDA's fits)"))
    }

    @Test(arguments: [UInt8(0), 4, 255])
    func unknownDtype(code: UInt8) throws {
        #expect(decodeError(try Fixtures.bytes("chunk_f32.bin").patching(46, [code]))
            == .invalidValue(field: "dtype", reason: "unknown code \(code)"))
    }

    @Test(arguments: [UInt8(0), 6, 255])
    func unknownPass(code: UInt8) throws {
        #expect(decodeError(try Fixtures.bytes("task_repair.bin").patching(20, [code]))
            == .invalidValue(field: "pass", reason: "unknown pass \(code)"))
    }

    @Test(arguments: [UInt8(0), 5, 255])
    func unknownMarker(code: UInt8) throws {
        #expect(decodeError(try Fixtures.bytes("run_marker_closed.bin").patching(12, [code]))
            == .invalidValue(field: "marker", reason: "unknown marker \(code)"))
    }

    /// Y and R must be at least 1 everywhere, Z in a conditional; Z = 0 elsewhere only with
    /// features (`featuresAloneOnlyWithFeatures`).
    @Test func zeroClassCountsAndRows() throws {
        let atLeastOne = "must be at least 1"
        let cases: [(String, Int, String, String)] = [
            ("chunk_f32.bin", 38, "source_classes", Self.noSoftmaxNoFeatures), ("chunk_f32.bin", 42, "target_classes", atLeastOne),
            ("chunk_f32.bin", 34, "row_count", atLeastOne), ("chunk_features_only_f32.bin", 42, "target_classes", atLeastOne),
            ("manifest.bin", 37, "source_classes", Self.noSoftmaxNoFeatures), ("manifest.bin", 41, "target_classes", atLeastOne),
            ("manifest_features_only.bin", 46, "target_classes", atLeastOne),
            ("partial.bin", 37, "target_classes", atLeastOne), ("partial.bin", 41, "source_classes", Self.noSoftmaxNoFeatures),
            ("conditional.bin", 12, "target_classes", atLeastOne), ("conditional.bin", 16, "source_classes", atLeastOne),
        ]
        for (name, offset, field, reason) in cases {
            #expect(decodeError(try Fixtures.bytes(name).patching(offset, UInt32(0)))
                == .invalidValue(field: field, reason: reason), "\(name) \(field)")
        }
    }

    // MARK: Sizes that would crash or exhaust a decoding process

    /// Y·Z beyond `WireFormat.maxCells` (here far beyond Int's range) is refused, not trapped
    /// on and not allocated.
    @Test func hugeClassCountsAreRefusedNotTrapped() throws {
        for (name, yOffset, zOffset) in [("conditional.bin", 12, 16), ("partial.bin", 37, 41)] {
            let frame = try Fixtures.bytes(name).patching(yOffset, UInt32.max).patching(zOffset, UInt32.max)
            #expect(decodeError(frame) != nil, "\(name)")
        }
    }

    /// A first_row of 2⁶³ or more would not fit the row indices of the numerics: refused.
    @Test func firstRowBeyondIntIsRefused() throws {
        let chunk = try Fixtures.bytes("chunk_f32.bin").patching(26, UInt64(1) << 63)
        #expect(decodeError(chunk) != nil)
    }

    /// The offsets the patches above rely on hold the values the fixtures were written with.
    @Test func fixtureOffsetsAreAsDocumented() throws {
        let chunk = try Fixtures.bytes("chunk_f32.bin")
        #expect(chunk.u32(at: 22) == 1 && chunk.u32(at: 34) == 2 && chunk.u32(at: 38) == 3 && chunk.u32(at: 42) == 2)
        #expect(chunk[46] == 2 && chunk.count == 80)
        let manifest = try Fixtures.bytes("manifest.bin")
        #expect(manifest.u32(at: 29) == 1 && manifest.u32(at: 33) == 2 && manifest.u32(at: 37) == 3 && manifest.u32(at: 41) == 3)
        #expect(manifest.u32(at: 57) == 0 && manifest.u32(at: 61) == 1 && manifest[65] == 1 && manifest.u32(at: 66) == 2)
        #expect(manifest.count == 70 + 48)
        let partial = try Fixtures.bytes("partial.bin")
        // Version 2: the run id, model and data-set names ("r1", "vit-b/16", "café") take 21 bytes.
        #expect(partial[4] == 2 && partial.u32(at: 37) == 2 && partial.u32(at: 41) == 3 && partial.u32(at: 53) == 2)
        #expect(partial.u32(at: 89) == 1 && partial.u32(at: 93) == 2 && partial.u32(at: 97) == 3 && partial.u32(at: 101) == 3)
        let task = try Fixtures.bytes("task_pass2.bin")
        #expect(task[20] == 2 && task.u32(at: 21) == 2 && task.u32(at: 49) == 2 && task.u32(at: 53) == 0)
        #expect(task.u32(at: 69) == 3 && task.u32(at: 81) == 1 && task.u32(at: 93) == 2 && task.count == 53 + 56)
        let conditional = try Fixtures.bytes("conditional.bin")
        #expect(conditional.u32(at: 12) == 2 && conditional.u32(at: 16) == 3 && conditional.u32(at: 24) == 2)
        #expect(conditional.u32(at: 28) == 0 && conditional.u32(at: 32) == 4 && conditional.count == 40 + 32)
        let marker = try Fixtures.bytes("run_marker_pass2.bin")
        #expect(marker[12] == 1 && marker.u32(at: 13) == 2)
        let rejected = try Fixtures.bytes("chunk_rejected.bin")
        #expect(rejected.u32(at: 30) == 2 && rejected[34] == UInt8(rejected.count - 36))
        // Version 2 with features: dtype f16 at 46, feature_width 4 at 47, feature_dtype f32 at 51;
        // labels at 56, θ at 72 (18 bytes), features at 96 (48 bytes).
        let features32 = try Fixtures.bytes("chunk_features_f32.bin")
        #expect(features32[4] == 2 && features32.u32(at: 34) == 3 && features32.u32(at: 38) == 3 && features32[46] == 1)
        #expect(features32.u32(at: 47) == 4 && features32[51] == 2 && features32.u32(at: 60) == 1 && features32.count == 144)
        let features16 = try Fixtures.bytes("chunk_features_f16.bin")
        #expect(features16[52] == 3 && features16.u32(at: 53) == 3 && features16[57] == 1 && features16.count == 132)
        let manifestFeatures = try Fixtures.bytes("manifest_features.bin")
        #expect(manifestFeatures[4] == 2 && manifestFeatures.u32(at: 41) == 37 && manifestFeatures[65] == 0)
        #expect(manifestFeatures.u32(at: 66) == 2048 && manifestFeatures.u32(at: 70) == 2 && manifestFeatures.count == 74 + 48)
        // Version 3: feature_width at 45, matrix part at 93, section at 109, payload at 112.
        for (name, width, index, section) in [("partial_v3.bin", 0, 1, 0), ("partial_v3_joint.bin", 2, 0, 0), ("partial_v3_features.bin", 2, 2, 1)] {
            let partial = try Fixtures.bytes(name)
            #expect(partial[4] == 3 && partial.u32(at: 37) == 2 && partial.u32(at: 41) == 3 && partial.u32(at: 45) == UInt32(width))
            #expect(partial.u32(at: 57) == 2 && partial.u32(at: 93) == UInt32(index) && partial[109] == UInt8(section), "\(name)")
        }
        #expect(try Fixtures.bytes("partial_v3_features.bin").count == 112 + 56)
        // Features alone. The chunk (version 3): source_classes 0 at 38, target_classes at 42,
        // feature_width at 46, feature_dtype at 50, labels at 56, features at 72 (48 bytes).
        let featuresAlone = try Fixtures.bytes("chunk_features_only_f32.bin")
        #expect(featuresAlone[4] == 3 && featuresAlone.u32(at: 34) == 3 && featuresAlone.u32(at: 38) == 0)
        #expect(featuresAlone.u32(at: 42) == 2 && featuresAlone.u32(at: 46) == 4 && featuresAlone[50] == 2)
        #expect(featuresAlone.u32(at: 60) == 1 && featuresAlone.u32(at: 72) == Float(1.5).bitPattern && featuresAlone.count == 120)
        // The manifest (version 2, names of 26 bytes): source_classes 0 at 42, Y at 46, flags at
        // 70, feature_width at 71, chunk_count at 75, two entries from 79.
        let manifestAlone = try Fixtures.bytes("manifest_features_only.bin")
        #expect(manifestAlone[4] == 2 && manifestAlone.u32(at: 42) == 0 && manifestAlone.u32(at: 46) == 37 && manifestAlone[70] == 0)
        #expect(manifestAlone.u32(at: 71) == 768 && manifestAlone.u32(at: 75) == 2 && manifestAlone.count == 79 + 48)
        // The partial: the layout of partial_v3_features.bin with source_classes 0 at 41.
        let partialAlone = try Fixtures.bytes("partial_v3_features_only.bin")
        #expect(partialAlone.u32(at: 41) == 0 && partialAlone.u32(at: 45) == 2 && partialAlone.u32(at: 93) == 1)
        #expect(partialAlone.u32(at: 97) == 2 && partialAlone[109] == 1 && partialAlone.count == 112 + 56)
        // Sections 2 to 4: the layout of the other version-3 partials, sample_count 4 at 49.
        for (name, z, index, count, start, cells, section, length) in [
            ("partial_v3_class_variances.bin", 3, 2, 4, 0, 10, 2, 192), ("partial_v3_class_scatters.bin", 0, 2, 3, 0, 12, 3, 208),
            ("partial_v3_within_class_scatter.bin", 3, 8, 9, 6, 3, 4, 136),
        ] {
            let partial = try Fixtures.bytes(name)
            #expect(partial[4] == 3 && partial.u32(at: 37) == 2 && partial.u32(at: 41) == UInt32(z) && partial.u32(at: 45) == 2, "\(name)")
            #expect(partial.u32(at: 49) == 4 && partial.u32(at: 93) == UInt32(index) && partial.u32(at: 97) == UInt32(count), "\(name)")
            #expect(partial.u32(at: 101) == UInt32(start) && partial.u32(at: 105) == UInt32(cells), "\(name)")
            #expect(partial[109] == UInt8(section) && partial.count == length && length == 112 + 8 * cells, "\(name)")
        }
        // SFDA's tasks: pass at 20, conditional_parts at 21, chunk_count after the locations.
        let mix = try Fixtures.bytes("task_sfda_mix.bin")
        #expect(mix[20] == 4 && mix.u32(at: 21) == 2 && mix.u32(at: 25) == 2 && mix.u32(at: 49) == 2 && mix.count == 109)
        let score = try Fixtures.bytes("task_sfda_score.bin")
        #expect(score[20] == 5 && score.u32(at: 21) == 3 && score.u32(at: 49) == 3 && score.u32(at: 61) == 2 && score.count == 121)
        // The fit: rows (Y) at 12, columns (Z) at 16, the part at 20, values at 40.
        let fit = try Fixtures.bytes("conditional_sfda_fit.bin")
        #expect(fit.u32(at: 12) == 6 && fit.u32(at: 16) == 3 && fit.u32(at: 24) == 1 && fit.u32(at: 32) == 18 && fit.count == 40 + 144)
        #expect(fit.f64(at: 40) == 0.5 && fit.f64(at: 40 + 8 * 8) == 0 && fit.f64(at: 40 + 8 * 11) == 2 && fit.f64(at: 40 + 8 * 15) == 0.0625)
        // The version-2 task result: target_classes at 44, feature_width 48, the part at 52,
        // padding 68..<72, values at 72.
        let result = try Fixtures.bytes("task_result_sfda_mix.bin")
        #expect(result[4] == 2 && result.u32(at: 44) == 2 && result.u32(at: 48) == 2 && result.u32(at: 52) == 1 && result.u32(at: 56) == 2)
        #expect(result.u32(at: 60) == 6 && result.u32(at: 64) == 3 && result.count == 96)
        #expect(try Fixtures.bytes("task_result_sfda_score.bin").count == 44)
        // Marker 4: the pass at 13, task_count at 14, the ids from 18.
        let tasksIssued = try Fixtures.bytes("run_marker_sfda_mix.bin")
        #expect(tasksIssued[12] == 4 && tasksIssued[13] == 4 && tasksIssued.u32(at: 14) == 2 && tasksIssued.count == 18 + 16)
    }
}

// MARK: - Helpers

/// The error decoding throws, or nil when `bytes` decode.
func decodeError(_ bytes: [UInt8]) -> FrameError? {
    do {
        _ = try Frame.decode(bytes)
        return nil
    } catch {
        return error
    }
}

/// Decodes `bytes`; when they are accepted, encoding the decoded values must give them back.
func expectCanonicalOrRejected(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
    guard let frame = try? Frame.decode(bytes) else { return }
    // Swift encodes chunks from a `PredictionChunk`, whose first row is an `Int`.
    if case .chunk(let chunk) = frame, chunk.id.firstRow > UInt64(Int.max) { return }
    let again = FrameValue(frame).encoded()
    if case .partial = frame, bytes[4] < 3 {
        // An older partial is written as version 3; that must read back to the same fields
        // (compared encoded: NaN ≠ NaN).
        let upgraded = try? Frame.decode(again)
        #expect(again[4] == 3 && upgraded.map { FrameValue($0).encoded() } == again, "an older partial does not upgrade",
                sourceLocation: sourceLocation)
        return
    }
    #expect(again == bytes, "accepted bytes do not re-encode identically", sourceLocation: sourceLocation)
}

extension [UInt8] {
    /// A copy with `bytes` written at `offset`.
    func patching(_ offset: Int, _ bytes: [UInt8]) -> [UInt8] {
        var copy = self
        copy.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
        return copy
    }

    /// A copy with `value` written little-endian at `offset`.
    func patching<T: FixedWidthInteger>(_ offset: Int, _ value: T) -> [UInt8] {
        patching(offset, Swift.withUnsafeBytes(of: value.littleEndian) { Array($0) })
    }

    func u32(at offset: Int) -> UInt32 {
        self[offset..<(offset + 4)].reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// The float64 at `offset`, little-endian.
    func f64(at offset: Int) -> Double {
        Double(bitPattern: self[offset..<(offset + 8)].reversed().reduce(0) { $0 << 8 | UInt64($1) })
    }
}
