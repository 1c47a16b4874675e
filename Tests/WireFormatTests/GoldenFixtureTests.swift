import Foundation
import LEEPCore
import Testing
import WireFormat

/// The golden fixtures in `Fixtures/` were written by `make_fixtures.py`, an independent Python
/// encoder of docs/wire-format.md. For each one, Swift's encoder must produce exactly those
/// bytes from the same field values, and Swift's decoder must read those values back.
@Suite struct GoldenFixtureTests {
    @Test(arguments: Golden.names)
    func swiftEncodesTheFixtureBytes(name: String) throws {
        let fixture = try Fixtures.bytes(name)
        let expected = try #require(Golden.value(name))
        #expect(expected.encoded() == fixture, "Swift's encoding differs from \(name)")
    }

    @Test(arguments: Golden.names + Golden.olderVersions)
    func swiftDecodesTheFixtureValues(name: String) throws {
        let fixture = try Fixtures.bytes(name)
        let frame = try Frame.decode(fixture)
        #expect(FrameValue(frame) == Golden.value(name))
        // Partition markers belong to a partition, not to a run.
        #expect(frame.run == (name.hasPrefix("partition_") ? nil : "r1"))
    }

    @Test func everyFixtureIsTested() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Fixtures.directory.path)
            .filter { $0.hasSuffix(".bin") }
        #expect(Set(files) == Set(Golden.names + Golden.olderVersions))
    }

    /// Partials of versions 1 and 2, as workers of older builds wrote them, still read: the same
    /// part, without names in version 1, and without features in both (an aggregator upgraded
    /// first keeps merging what they send). Written again, they become version 3.
    @Test func olderPartialsStillRead() throws {
        guard case .partial(let v1) = try Frame.decode(try Fixtures.bytes("partial_v1.bin")),
              case .partial(let v2) = try Frame.decode(try Fixtures.bytes("partial.bin")),
              case .partial(let v3) = try Frame.decode(try Fixtures.bytes("partial_v3.bin"))
        else {
            Issue.record("not partials")
            return
        }
        #expect(v1.model == "" && v1.dataset == "" && v2.model == "vit-b/16" && v2.dataset == "café")
        #expect(v1.chunks == v2.chunks && v1.jointSums == v2.jointSums && v1.argmaxCounts == v2.argmaxCounts)
        #expect(v1.partialID == v2.partialID, "the id is the run id's and the chunks', not the names'")
        for old in [v1, v2] {
            #expect(old.featureWidth == 0 && old.section == .joint && old.featureValues.isEmpty)
        }
        #expect(v2 == v3, "version 3 without features carries what version 2 did")
        #expect(v2.encoded() == (try Fixtures.bytes("partial_v3.bin")), "a version-2 partial is written again as version 3")
    }

    /// Chunks and manifests without features are still version 1, byte-identical to older
    /// builds' (the fixtures above predate features); with features, version 2 (a manifest of
    /// features alone too); chunks of features alone, version 3.
    @Test func versionsFollowTheFeatures() throws {
        for name in ["chunk_f32.bin", "chunk_f64.bin", "chunk_f16.bin", "manifest.bin", "conditional.bin", "task_pass2.bin"] {
            #expect(try Fixtures.bytes(name)[4] == 1, "\(name)")
        }
        for name in ["chunk_features_f32.bin", "chunk_features_f16.bin", "manifest_features.bin", "manifest_features_only.bin"] {
            #expect(try Fixtures.bytes(name)[4] == 2, "\(name)")
        }
        for name in ["chunk_features_only_f32.bin", "chunk_features_only_f16.bin", "partial_v3.bin", "partial_v3_joint.bin",
                     "partial_v3_features.bin", "partial_v3_features_only.bin"]
        {
            #expect(try Fixtures.bytes(name)[4] == 3, "\(name)")
        }
        // Partials of sections 2 to 4 are version 3 like the others; a task result is version 2
        // only when it carries an SFDA mixing task's statistics; SFDA's tasks, fits and marker
        // keep their kinds' version 1.
        for name in ["partial_v3_class_variances.bin", "partial_v3_class_scatters.bin", "partial_v3_within_class_scatter.bin"] {
            #expect(try Fixtures.bytes(name)[4] == 3, "\(name)")
        }
        #expect(try Fixtures.bytes("task_result_sfda_mix.bin")[4] == 2)
        for name in ["task_result.bin", "task_result_sfda_score.bin", "task_sfda_mix.bin", "task_sfda_score.bin",
                     "conditional_sfda_fit.bin", "run_marker_sfda_mix.bin"]
        {
            #expect(try Fixtures.bytes(name)[4] == 1, "\(name)")
        }
        #expect(WireFormat.version == 3)
        #expect(WireFormat.version(of: .chunk) == 3 && WireFormat.version(of: .manifest) == 2 && WireFormat.version(of: .partial) == 3)
        #expect(WireFormat.version(of: .taskResult) == 2 && WireFormat.version(of: .conditional) == 1)
        #expect(WireFormat.version(of: .task) == 1 && WireFormat.version(of: .runMarker) == 1 && WireFormat.version(of: .partitionMarker) == 1)
    }

    /// The fixtures of a run of features alone, field by field: what a producer of an encoder
    /// without a classifier head sends, and what its workers send the aggregator.
    @Test func featuresAloneDecodeFieldByField() throws {
        guard case .chunk(let chunk) = try Frame.decode(try Fixtures.bytes("chunk_features_only_f32.bin")),
              case .manifest(let manifest) = try Frame.decode(try Fixtures.bytes("manifest_features_only.bin")),
              case .partial(let partial) = try Frame.decode(try Fixtures.bytes("partial_v3_features_only.bin"))
        else {
            Issue.record("not a chunk, a manifest and a partial")
            return
        }
        #expect(chunk.run == RunIdentity(id: "r1", model: "m", dataset: "d") && chunk.shardCount == 1)
        #expect(chunk.id == ChunkID(shard: 0, firstRow: 0, rowCount: 3))
        #expect(chunk.sourceClasses == 0 && chunk.targetClasses == 2 && chunk.labels == [0, 1, 1])
        #expect(chunk.probabilities == nil)
        let features = try #require(chunk.features)
        #expect(features.width == 4 && features.rowCount == 3 && features.values.type == .float32)
        guard case .float32(let values) = features.values else {
            Issue.record("not float32 features")
            return
        }
        #expect(values == [1.5, -2, 0, 3.25, 0.5, 0.25, -0.125, 8, -1, 2, 4, -0.5])

        #expect(manifest.run == RunIdentity(id: "r1", model: "clip-vit-b/16", dataset: "café"))
        #expect(manifest.sourceClasses == 0 && manifest.featureWidth == 768 && manifest.targetClasses == 37)
        #expect(manifest.shard == 0 && manifest.shardCount == 1 && manifest.shardRows == 300 && !manifest.eepAccuracy)
        #expect(manifest.totalChunks == 2 && manifest.partIndex == 0 && manifest.partCount == 1)
        #expect(manifest.chunks.map(\.id.rowCount) == [256, 44] && manifest.chunks[1].location.offset == 1 << 40)

        #expect(partial.sourceClasses == 0 && partial.featureWidth == 2 && partial.targetClasses == 2)
        #expect(partial.section == .statistic(.moments) && partial.jointSums.isEmpty && partial.argmaxCounts.isEmpty)
        #expect(partial.part == MatrixPart(partIndex: 1, partCount: 2, cellStart: 7, cellCount: 7))
        #expect(partial.featureValues == [7.0, -0.5, 0.125, 3.0, 0.001, 2.5, -4.0] && partial.sampleCount == 5)
        // The features-only chunk carries exactly the features of its version-2 sibling.
        guard case .chunk(let withTheta) = try Frame.decode(try Fixtures.bytes("chunk_features_f32.bin")) else {
            Issue.record("chunk_features_f32.bin is not a chunk")
            return
        }
        #expect(ChunkValues(withTheta).features == ChunkValues(chunk).features && withTheta.labels == chunk.labels)
    }

    /// The statistics of sections 2 to 4 are laid out as docs/wire-format.md says: the values the
    /// independent encoder computed from STATISTIC_ROWS (and MIXED_ROWS) are LEEPCore's
    /// `flattened` of the same rows, and read back into the same statistics.
    @Test func statisticSectionsAreLEEPCoresFlatLayouts() throws {
        guard case .partial(let variancesPart) = try Frame.decode(try Fixtures.bytes("partial_v3_class_variances.bin")),
              case .partial(let scattersPart) = try Frame.decode(try Fixtures.bytes("partial_v3_class_scatters.bin")),
              case .partial(let withinPart) = try Frame.decode(try Fixtures.bytes("partial_v3_within_class_scatter.bin")),
              case .taskResult(let mixResult) = try Frame.decode(try Fixtures.bytes("task_result_sfda_mix.bin"))
        else {
            Issue.record("not three partials and a task result")
            return
        }
        #expect(variancesPart.section == .statistic(.classVariances) && variancesPart.section.code == 2)
        #expect(scattersPart.section == .statistic(.classScatters) && scattersPart.section.code == 3)
        #expect(withinPart.section == .statistic(.withinClassScatter) && withinPart.section.code == 4)

        let rows = Golden.statisticRows
        let variances = try Golden.statistic(ClassVariances.self, of: rows)
        #expect(variances.flattened == variancesPart.featureValues)
        #expect(variances.classCounts == [2, 2] && variances.classMeans == [2, 1.5, -3, 2] && variances.classSquares == [2, 0.5, 2, 4.5])
        #expect(try ClassVariances(flattened: variancesPart.featureValues, sampleCount: 4, featureWidth: 2, targetClasses: 2) == variances)
        #expect(ClassVariances.flattenedCount(targetClasses: 2, featureWidth: 2) == 10)

        let scatters = try Golden.statistic(ClassScatters.self, of: rows)
        #expect(scatters.flattened == scattersPart.featureValues)
        // Each class's D×D scatter, of which the upper triangle (i ≤ j) is kept, row-major.
        let upper = [0, 1, 3, 4, 5, 7].map { scatters.classScatters[$0] }
        #expect(upper == [2, 1, 0.5, 2, 3, 4.5])
        #expect(try ClassScatters(flattened: scattersPart.featureValues, sampleCount: 4, featureWidth: 2, targetClasses: 2) == scatters)
        #expect(ClassScatters.flattenedCount(targetClasses: 2, featureWidth: 2) == 12)

        let within = try Golden.statistic(WithinClassScatter.self, of: rows)
        #expect(within.flattened == Golden.withinClassScatterValues)
        #expect(Array(within.flattened[6...]) == withinPart.featureValues && withinPart.part.cellStart == 6)
        #expect(WithinClassScatter(pooling: scatters) == within, "the within-class scatter is the per-class scatters summed")
        #expect(try WithinClassScatter(flattened: Golden.withinClassScatterValues, sampleCount: 4, featureWidth: 2, targetClasses: 2) == within)
        #expect(WithinClassScatter.flattenedCount(targetClasses: 2, featureWidth: 2) == 9)

        let mixed = try Golden.statistic(WithinClassScatter.self, of: Golden.mixedRows)
        let statistics = try #require(mixResult.statistics)
        #expect(mixed.flattened == Golden.mixedWithinClassScatterValues)
        #expect(Array(mixed.flattened[statistics.part.cellStart...]) == statistics.values)
    }

    /// The flat lengths of docs/wire-format.md's table, for shapes other than the fixtures'.
    @Test(arguments: [(1, 1), (2, 2), (3, 5), (37, 768), (1000, 4096)])
    func statisticLengthsAreTheDocumentedOnes(targetClasses y: Int, featureWidth d: Int) {
        #expect(FeatureStatistics.flattenedCount(targetClasses: y, featureWidth: d) == y + d + d * (d + 1) / 2 + d + 1 + y * d)
        #expect(ClassVariances.flattenedCount(targetClasses: y, featureWidth: d) == y + 2 * y * d)
        #expect(ClassScatters.flattenedCount(targetClasses: y, featureWidth: d) == y + y * d + y * d * (d + 1) / 2)
        #expect(WithinClassScatter.flattenedCount(targetClasses: y, featureWidth: d) == y + y * d + d * (d + 1) / 2)
        for kind in StatisticKind.allCases {
            #expect(kind.statisticType.kind == kind)
        }
        #expect(StatisticKind.allCases.map(\.rawValue) == [1, 2, 3, 4])
    }

    /// A worker's partial carries the sections of `FeatureStatisticSet.plan` after the joint
    /// cells, in section order, numbered over all of them; the per-class scatters only while
    /// Y·D² ≤ 2²⁶, else the within-class scatter in their place. The fixtures are parts of such
    /// partials.
    @Test func partialPartsNumberThePlannedSectionsInOrder() throws {
        #expect(FeatureStatisticSet.plan(featureWidth: 2, targetClasses: 2) == [.moments, .classVariances, .classScatters])
        #expect(FeatureStatisticSet.plan(featureWidth: 4096, targetClasses: 4) == [.moments, .classVariances, .classScatters])
        #expect(FeatureStatisticSet.plan(featureWidth: 4096, targetClasses: 5) == [.moments, .classVariances, .withinClassScatter])
        #expect(FeatureStatisticSet.plan(featureWidth: 1, targetClasses: 1 << 26) == [.moments, .classVariances, .classScatters])
        var set = FeatureStatisticSet(featureWidth: 2, targetClasses: 2)
        let rows = Golden.statisticRows
        try rows.features.withUnsafeBufferPointer { features in
            try rows.labels.withUnsafeBufferPointer { labels in
                try set.add(FeatureChunk(values: .float64(features), labels: labels, width: 2))
            }
        }
        #expect(set.kinds == [.moments, .classVariances, .classScatters])
        func parts(
            _ statistics: [(kind: StatisticKind, values: [Double])], sourceClasses z: Int, messageLimit: Int
        ) -> [PartialFrame] {
            PartialFrame.parts(
                run: Golden.vitCafe, partialID: PartialFrame.id(run: "r1", chunks: Golden.partialChunks), targetClasses: 2,
                sourceClasses: z, sampleCount: 4, chunks: Golden.partialChunks, jointSums: Array(repeating: 0.5, count: 2 * z),
                argmaxCounts: Array(repeating: 1, count: 2 * z), featureWidth: 2, statistics: statistics, messageLimit: messageLimit)
        }
        let joint = parts(set.sections, sourceClasses: 3, messageLimit: 1_000_000)
        #expect(joint.map(\.section) == [.joint, .statistic(.moments), .statistic(.classVariances), .statistic(.classScatters)])
        #expect(FrameValue.partial(joint[2]) == Golden.value("partial_v3_class_variances.bin"))
        let alone = parts(set.sections, sourceClasses: 0, messageLimit: 1_000_000)
        #expect(alone.map(\.section) == [.statistic(.moments), .statistic(.classVariances), .statistic(.classScatters)])
        #expect(FrameValue.partial(alone[2]) == Golden.value("partial_v3_class_scatters.bin"))
        // The within-class scatter in place of the per-class scatters, under a 48-byte payload
        // budget: 3 joint cells, or 6 values, a part.
        let within = WithinClassScatter(pooling: try #require(set[ClassScatters.self]))
        let sections = set.sections.filter { $0.kind != .classScatters } + [(kind: StatisticKind.withinClassScatter, values: within.flattened)]
        let small = parts(sections, sourceClasses: 3, messageLimit: 4096 + 16 * 2 + 48)
        #expect(small.map(\.section.code) == [0, 0, 1, 1, 1, 2, 2, 4, 4])
        #expect(small.map(\.part.cellStart) == [0, 3, 0, 6, 12, 0, 6, 0, 6])
        #expect(small.allSatisfy { $0.part.partCount == 9 } && small.map(\.part.partIndex) == Array(0..<9))
        #expect(FrameValue.partial(small[8]) == Golden.value("partial_v3_within_class_scatter.bin"))
    }

    /// SFDA's frames, field by field: the tasks name their fits' parts in order, the mixing
    /// result carries a part of the mixed rows' statistics, the scoring result its sum in
    /// `log_eep_sum`, and the marker the pass and the tasks issued.
    @Test func sfdaFramesDecodeFieldByField() throws {
        guard case .task(let mix) = try Frame.decode(try Fixtures.bytes("task_sfda_mix.bin")),
              case .task(let score) = try Frame.decode(try Fixtures.bytes("task_sfda_score.bin")),
              case .taskResult(let mixResult) = try Frame.decode(try Fixtures.bytes("task_result_sfda_mix.bin")),
              case .taskResult(let scoreResult) = try Frame.decode(try Fixtures.bytes("task_result_sfda_score.bin")),
              case .runMarker(let marker) = try Frame.decode(try Fixtures.bytes("run_marker_sfda_mix.bin"))
        else {
            Issue.record("not two tasks, two task results and a run marker")
            return
        }
        #expect(mix.pass == .sfdaMix && mix.pass.rawValue == 4 && mix.pass.readsSharedTables)
        #expect(mix.conditional == [RecordLocation(partition: 2, offset: 40), RecordLocation(partition: 2, offset: 41)])
        #expect(mix.chunks == Golden.pass2Task.chunks && mix.taskID == 0x3BCE_058B_F4E6_F289)
        #expect(score.pass == .sfdaScore && score.pass.rawValue == 5 && score.conditional.count == 3)
        #expect(score.conditional.last == RecordLocation(partition: 3, offset: 50) && score.taskID == 0xDD59_EA0B_45A8_4FFE)
        #expect(Set([mix.taskID, score.taskID, Golden.pass2TaskID]).count == 3, "the pass is hashed")

        #expect(mixResult.taskID == mix.taskID && mixResult.sampleCount == 4 && mixResult.logEEPSum == 0 && mixResult.hits == 0)
        let statistics = try #require(mixResult.statistics)
        #expect(statistics.targetClasses == 2 && statistics.featureWidth == 2)
        #expect(statistics.part == MatrixPart(partIndex: 1, partCount: 2, cellStart: 6, cellCount: 3))
        #expect(statistics.values == [1, 1.5, 2.5])
        // The parts a worker writes for these statistics under a 48-byte payload budget.
        let parts = TaskResultFrame.parts(
            run: "r1", taskID: mix.taskID, sampleCount: 4, statistics: Golden.mixedWithinClassScatterValues, targetClasses: 2,
            featureWidth: 2, messageLimit: 4096 + 48)
        #expect(parts.map(\.statistics?.part) == [MatrixPart(partIndex: 0, partCount: 2, cellStart: 0, cellCount: 6), statistics.part])
        #expect(parts.last == mixResult && parts.allSatisfy { $0.encoded()[4] == 2 })

        #expect(scoreResult.taskID == score.taskID && scoreResult.statistics == nil)
        #expect(scoreResult.logEEPSum == 3.25 && scoreResult.hits == 0 && scoreResult.sampleCount == 4)

        #expect(marker.run == "r1" && marker.marker == .tasksIssued(pass: .sfdaMix, taskIDs: [mix.taskID, 2]))
    }

    /// The SFDA fit of the fixture reads as a fit and is written back as the same matrix; so does
    /// a fit LEEPCore makes from real statistics, through conditional frames cut into parts.
    @Test func sfdaFitMatricesRoundTrip() throws {
        guard case .conditional(let table) = try Frame.decode(try Fixtures.bytes("conditional_sfda_fit.bin")) else {
            Issue.record("conditional_sfda_fit.bin is not a conditional")
            return
        }
        // (2K + 2) × (D + 1) in the Y and Z fields: K = 2 classes, D = 2 features.
        #expect(table.targetClasses == 6 && table.sourceClasses == 3 && table.values == Golden.sfdaFitMatrix)
        let fit = try #require(SFDA.Fit(matrix: table.values, rows: 6, columns: 3))
        #expect(fit.classes == [0, 2] && fit.featureWidth == 2 && fit.shrinkage == 0.0625)
        #expect(fit.knows(0) && !fit.knows(1) && fit.knows(2) && !fit.knows(3) && !fit.knows(-1))
        let matrix = fit.matrix
        #expect(matrix.rows == 6 && matrix.columns == 3 && matrix.values == table.values)
        // What is not a fit: a negative label, a shape that is not (2K + 2) × (D + 1) with
        // K ≥ 2 and D ≥ 1, labels out of order, a value that is not finite.
        #expect(SFDA.Fit(matrix: table.values.setting(8, -1.0), rows: 6, columns: 3) == nil)
        #expect(SFDA.Fit(matrix: table.values, rows: 3, columns: 6) == nil)
        #expect(SFDA.Fit(matrix: table.values, rows: 9, columns: 2) == nil)
        #expect(SFDA.Fit(matrix: Array(table.values.dropLast()), rows: 6, columns: 3) == nil)
        #expect(SFDA.Fit(matrix: table.values.setting(8, 2.0).setting(11, 0.0), rows: 6, columns: 3) == nil)
        #expect(SFDA.Fit(matrix: table.values.setting(11, 0.0), rows: 6, columns: 3) == nil, "labels 0, 0")
        #expect(SFDA.Fit(matrix: table.values.setting(11, 1.5), rows: 6, columns: 3) == nil, "label 1.5")
        #expect(SFDA.Fit(matrix: table.values.setting(0, .nan), rows: 6, columns: 3) == nil)
        #expect(SFDA.Fit(matrix: table.values.setting(17, 1.0), rows: 6, columns: 3) != nil,
                "the zeros after the shrinkage are not read")

        // The first fit of STATISTIC_ROWS: μ = (−0.5, 1.75), each class's other-class mean the
        // other class's mean, labels 0 and 1, then the shrinkage.
        guard case .success(let real) = SFDA.Fit.fit(try Golden.statistic(WithinClassScatter.self, of: Golden.statisticRows)) else {
            Issue.record("no fit")
            return
        }
        let values = real.matrix.values
        #expect(real.matrix.rows == 6 && real.matrix.columns == 3 && values.count == 18)
        #expect(Array(values[6..<12]) == [-3, 2, 0, 2, 1.5, 1] && Array(values[12..<15]) == [-0.5, 1.75, 0])
        #expect(values[15] == real.shrinkage && values[16] == 0 && values[17] == 0)
        #expect(SFDA.Fit(matrix: values, rows: 6, columns: 3) == real)
        for payload in [8, 40, 1_000_000] {
            var reassembled = [Double](repeating: .nan, count: values.count)
            for part in MatrixPart.split(cells: values.count, bytesPerCell: ConditionalFrame.bytesPerCell, maxPayloadBytes: payload) {
                let frame = ConditionalFrame(
                    run: "r1", targetClasses: 6, sourceClasses: 3, part: part,
                    values: Array(values[part.cellStart..<(part.cellStart + part.cellCount)]))
                guard case .conditional(let decoded) = try Frame.decode(frame.encoded()) else { continue }
                reassembled.replaceSubrange(part.cellStart..<(part.cellStart + part.cellCount), with: decoded.values)
            }
            let back = try #require(SFDA.Fit(matrix: reassembled, rows: 6, columns: 3))
            #expect(back == real && back.matrix.values == values, "payload \(payload)")
        }
    }

    /// The largest statistic a run's shape implies bounds what a frame may declare: at D = 4,096
    /// GBC's class variances, Y·(2D + 1) values, reach 2^27 first, at Y = 16,382.
    @Test func plannedFeatureValuesAreTheLargestStatisticOfTheShape() {
        #expect(WireFormat.plannedFeatureValues(targetClasses: 2, featureWidth: 2) == 14, "the moments")
        #expect(WireFormat.plannedFeatureValues(targetClasses: 10, featureWidth: 2048)
            == ClassScatters.flattenedCount(targetClasses: 10, featureWidth: 2048))
        #expect(WireFormat.plannedFeatureValues(targetClasses: 16382, featureWidth: 4096) == 16382 * (1 + 2 * 4096))
        #expect(WireFormat.plannedFeatureValues(targetClasses: 16382, featureWidth: 4096) <= WireFormat.maxFeatureValues)
        #expect(WireFormat.plannedFeatureValues(targetClasses: 16383, featureWidth: 4096) > WireFormat.maxFeatureValues)
        #expect(WireFormat.maxFeatureWidth == 8192 && WireFormat.maxFeatureValues == 134_217_728)
    }

    /// The ids the Python encoder computed (make_fixtures.py prints the pass-2 one).
    @Test func identifiersMatchThePythonHashes() throws {
        #expect(Golden.pass2TaskID == 0x278A_9D4B_10C5_421B)
        #expect(Golden.sfdaMixTask.taskID == 0x3BCE_058B_F4E6_F289 && Golden.sfdaScoreTask.taskID == 0xDD59_EA0B_45A8_4FFE)
        #expect(TaskFrame.id(run: "r1", pass: .repair, chunks: [ChunkID(shard: 1, firstRow: 2, rowCount: 2)])
            == 0x7C91_1841_3CEE_D5D0)
        #expect(PartialFrame.id(run: "r1", chunks: Golden.partialChunks) == 0xC4AC_35E7_7158_88D8)
        guard case .partial(let partial) = try Frame.decode(try Fixtures.bytes("partial.bin")) else {
            Issue.record("partial.bin is not a partial")
            return
        }
        #expect(partial.partialID == 0xC4AC_35E7_7158_88D8)
    }

    /// FNV-1a 64 reference values: the offset basis, and "a" (0x61).
    @Test func stableHasherIsFNV1a64() {
        #expect(StableHasher().value == 0xCBF2_9CE4_8422_2325)
        var byte = StableHasher()
        byte.combine(UInt8(0x61))
        #expect(byte.value == 0xAF63_DC4C_8601_EC8C)
        // A string is its length as a u32, then its UTF-8 bytes.
        var text = StableHasher()
        text.combine("a")
        #expect(text.value == 0xD80D_0DAE_A7DB_DD7F)
        var empty = StableHasher()
        empty.combine("")
        #expect(empty.value == 0x4D25_767F_9DCE_13F5)
    }

    // MARK: Score records

    /// The same strings as Tests/reference/test_score_schema.py validates against
    /// docs/score-record.schema.json: what the aggregator publishes, byte for byte.
    static let scoreRecords: [(record: ScoreRecord, json: String)] = {
        var progress = ScoreRecord(model: "resnet50", dataset: "cifar10", run: "r1", status: .progress)
        progress.pass = 1
        progress.chunksAccepted = 3
        progress.chunksExpected = 8
        progress.sourceClasses = 1000
        var final = ScoreRecord(model: "resnet50", dataset: "cifar10", run: "r1", status: .final)
        final.leep = -0.6931
        final.leepLower = -0.9
        final.leepUpper = -0.5
        final.nce = -0.5
        final.eepAccuracy = 1.0
        final.n = 10000
        final.sourceClasses = 1000
        final.targetClasses = 10
        var bracketed = ScoreRecord(model: "resnet50", dataset: "cifar10", run: "r1", status: .bracketed)
        bracketed.leepLower = -0.9
        bracketed.leepUpper = -0.5
        bracketed.n = 10000
        bracketed.sourceClasses = 1000
        bracketed.targetClasses = 10
        var streaming = ScoreRecord(model: "resnet50", dataset: "cifar10", run: "r1", status: .streaming)
        streaming.pass = 1
        streaming.chunksAccepted = 3
        streaming.sourceClasses = 1000
        streaming.rowsSeen = 3000
        (streaming.leepLower, streaming.leepUpper) = (-0.9, -0.5)
        (streaming.leepEstimate, streaming.leepEstimateLow, streaming.leepEstimateHigh) = (-0.7, -0.8, -0.6)
        streaming.sampledRows = 47
        var failed = ScoreRecord(model: "vit-b/16", dataset: "cifar10", run: "r2", status: .failed)
        failed.reason = "shard 1 rows 0..<64: row 3: sums to 1.5"
        failed.sourceClasses = 1000
        return [
            (progress, #"{"chunks_accepted":3,"chunks_expected":8,"dataset":"cifar10","model":"resnet50","pass":1,"run":"r1","source_classes":1000,"status":"progress"}"#),
            (final, #"{"dataset":"cifar10","eep_accuracy":1,"leep":-0.6931,"leep_lower":-0.9,"leep_upper":-0.5,"model":"resnet50","n":10000,"nce":-0.5,"run":"r1","source_classes":1000,"status":"final","target_classes":10}"#),
            (streaming, #"{"chunks_accepted":3,"dataset":"cifar10","leep_estimate":-0.7,"leep_estimate_high":-0.6,"leep_estimate_low":-0.8,"leep_lower":-0.9,"leep_upper":-0.5,"model":"resnet50","pass":1,"rows_seen":3000,"run":"r1","sampled_rows":47,"source_classes":1000,"status":"streaming"}"#),
            (bracketed, #"{"dataset":"cifar10","leep_lower":-0.9,"leep_upper":-0.5,"model":"resnet50","n":10000,"run":"r1","source_classes":1000,"status":"bracketed","target_classes":10}"#),
            (failed, #"{"dataset":"cifar10","model":"vit-b/16","reason":"shard 1 rows 0..<64: row 3: sums to 1.5","run":"r2","source_classes":1000,"status":"failed"}"#),
        ]
    }()

    @Test(arguments: 0..<5)
    func scoreRecordsEncodeAsDocumented(index: Int) throws {
        let (record, json) = Self.scoreRecords[index]
        // The aggregator's settings (Aggregator.publish).
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        #expect(String(decoding: try encoder.encode(record), as: UTF8.self) == json)
        #expect(try JSONDecoder().decode(ScoreRecord.self, from: Data(json.utf8)) == record)
    }

    @Test func scoreKeyIsACompactJSONArray() {
        #expect(ScoreRecord.key(model: "vit-b/16", dataset: "café") == #"["vit-b/16","café"]"#)
        #expect(ScoreRecord.key(model: #"a"b"#, dataset: "c,d") == #"["a\"b","c,d"]"#)
    }
}

// MARK: - Fixture files

/// The fixture directory, found next to this source file (no bundle resources).
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(name)))
    }
}

// MARK: - Comparable frame values

/// A chunk's fields, comparable. `ChunkFrame` itself is not `Equatable` (its θ may hold NaN).
struct ChunkValues: Equatable, Sendable {
    enum Probabilities: Equatable, Sendable {
        case float16([Float16])
        case float32([Float])
        case float64([Double])

        init(_ values: ChunkFrame.ProbabilityValues) {
            self = switch values {
            case .float16(let values): .float16(values)
            case .float32(let values): .float32(values)
            case .float64(let values): .float64(values)
            }
        }

        var wire: ChunkFrame.ProbabilityValues {
            switch self {
            case .float16(let values): .float16(values)
            case .float32(let values): .float32(values)
            case .float64(let values): .float64(values)
            }
        }

        var size: Int {
            switch self {
            case .float16: 2
            case .float32: 4
            case .float64: 8
            }
        }
    }

    /// A chunk's features: D and the values, row-major.
    struct Features: Equatable, Sendable {
        var width: Int
        var values: Probabilities
    }

    var run: RunIdentity
    var shard: UInt32
    var shardCount: UInt32
    var firstRow: UInt64
    var sourceClasses: Int
    var targetClasses: Int
    var labels: [Int32]
    /// θ; nil in a chunk of features alone.
    var probabilities: Probabilities?
    var features: Features?

    init(
        run: RunIdentity, shard: UInt32, shardCount: UInt32, firstRow: UInt64, sourceClasses: Int,
        targetClasses: Int, labels: [Int32], probabilities: Probabilities?, features: Features? = nil
    ) {
        self.run = run
        self.shard = shard
        self.shardCount = shardCount
        self.firstRow = firstRow
        self.sourceClasses = sourceClasses
        self.targetClasses = targetClasses
        self.labels = labels
        self.probabilities = probabilities
        self.features = features
    }

    init(_ frame: ChunkFrame) {
        run = frame.run
        shard = frame.id.shard
        shardCount = frame.shardCount
        firstRow = frame.id.firstRow
        sourceClasses = frame.sourceClasses
        targetClasses = frame.targetClasses
        labels = frame.labels
        probabilities = frame.probabilities.map(Probabilities.init)
        features = frame.features.map { Features(width: $0.width, values: Probabilities($0.values)) }
        #expect(frame.id.rowCount == UInt32(frame.labels.count))
        #expect(frame.features.map { $0.rowCount == frame.labels.count } ?? true)
    }

    /// Encodes through the public entry points producers use, from a `PredictionChunk` view
    /// (and a `FeatureRowsView` of the features), or from the labels and a `FeatureRowsView`
    /// for features alone.
    func encoded() -> [UInt8] {
        switch probabilities {
        case .float16(let values): encode(values)
        case .float32(let values): encode(values)
        case .float64(let values): encode(values)
        case nil: encodeFeaturesAlone()
        }
    }

    private func encodeFeaturesAlone() -> [UInt8] {
        guard let features else { preconditionFailure("a chunk carries softmax outputs, features or both") }
        return labels.withUnsafeBufferPointer { labels in
            FeatureRows(width: features.width, values: features.values.wire).withView { view in
                ChunkFrame.encode(
                    run: run, shard: shard, shardCount: shardCount, targetClasses: targetClasses, firstRow: Int(firstRow),
                    labels: labels, features: view)
            }
        }
    }

    private func encode<Scalar: ProbabilityScalar>(_ values: [Scalar]) -> [UInt8] {
        values.withUnsafeBufferPointer { theta in
            labels.withUnsafeBufferPointer { labels in
                let rows = PredictionChunk(probabilities: theta, labels: labels, sourceClasses: sourceClasses, firstRow: Int(firstRow))
                guard let features else {
                    return ChunkFrame.encode(run: run, shard: shard, shardCount: shardCount, targetClasses: targetClasses, rows: rows)
                }
                return FeatureRows(width: features.width, values: features.values.wire).withView { view in
                    ChunkFrame.encode(
                        run: run, shard: shard, shardCount: shardCount, targetClasses: targetClasses, rows: rows, features: view)
                }
            }
        }
    }
}

/// Any frame's fields, comparable, and its encoding.
enum FrameValue: Equatable, Sendable {
    case chunk(ChunkValues)
    case manifest(ManifestFrame)
    case partial(PartialFrame)
    case task(TaskFrame)
    case conditional(ConditionalFrame)
    case taskResult(TaskResultFrame)
    case chunkRejected(ChunkRejectedFrame)
    case runMarker(RunMarkerFrame)
    case partitionMarker(PartitionMarkerFrame)
    case rowSample(RowSampleFrame)

    init(_ frame: Frame) {
        switch frame {
        case .chunk(let frame): self = .chunk(ChunkValues(frame))
        case .manifest(let frame): self = .manifest(frame)
        case .partial(let frame): self = .partial(frame)
        case .task(let frame): self = .task(frame)
        case .conditional(let frame): self = .conditional(frame)
        case .taskResult(let frame): self = .taskResult(frame)
        case .chunkRejected(let frame): self = .chunkRejected(frame)
        case .runMarker(let frame): self = .runMarker(frame)
        case .partitionMarker(let frame): self = .partitionMarker(frame)
        case .rowSample(let frame): self = .rowSample(frame)
        }
    }

    func encoded() -> [UInt8] {
        switch self {
        case .chunk(let values): values.encoded()
        case .manifest(let frame): frame.encoded()
        case .partial(let frame): frame.encoded()
        case .task(let frame): frame.encoded()
        case .conditional(let frame): frame.encoded()
        case .taskResult(let frame): frame.encoded()
        case .chunkRejected(let frame): frame.encoded()
        case .runMarker(let frame): frame.encoded()
        case .partitionMarker(let frame): frame.encoded()
        case .rowSample(let frame): frame.encoded()
        }
    }
}

// MARK: - The fixtures' field values (the same as in make_fixtures.py)

enum Golden {
    /// Fixtures in the versions this build writes: Swift encodes their values to their bytes.
    static let names = [
        "chunk_f32.bin", "chunk_f64.bin", "chunk_f16.bin", "chunk_features_f32.bin", "chunk_features_f16.bin",
        "chunk_features_only_f32.bin", "chunk_features_only_f16.bin", "manifest.bin", "manifest_features.bin",
        "manifest_features_only.bin", "partial_v3.bin", "partial_v3_joint.bin", "partial_v3_features.bin",
        "partial_v3_features_only.bin", "task_pass2.bin",
        "task_pass2_accuracy.bin", "task_repair.bin", "conditional.bin", "task_result.bin", "chunk_rejected.bin", "run_marker_pass2.bin",
        "run_marker_closed.bin", "partition_barrier.bin", "partition_dead_lettered.bin",
        // Issue 19: feature statistics in sections 2 to 4, SFDA's tasks, fits, results and marker.
        "partial_v3_class_variances.bin", "partial_v3_class_scatters.bin", "partial_v3_within_class_scatter.bin",
        "task_sfda_mix.bin", "task_sfda_score.bin", "conditional_sfda_fit.bin", "task_result_sfda_mix.bin",
        "task_result_sfda_score.bin", "run_marker_sfda_mix.bin",
        // Issue 21: a chunk's sampled rows.
        "row_sample.bin",
    ]

    /// Fixtures of older versions this build still reads (and writes in the newer version).
    static let olderVersions = ["partial.bin", "partial_v1.bin"]

    static let partialChunks = [ChunkID(shard: 1, firstRow: 3, rowCount: 2), ChunkID(shard: 0, firstRow: 0, rowCount: 2)]

    static let pass2Task = TaskFrame(
        run: "r1", pass: .eep,
        conditional: [RecordLocation(partition: 0, offset: 7), RecordLocation(partition: 1, offset: 8)],
        chunks: [
            LocatedChunk(id: ChunkID(shard: 0, firstRow: 0, rowCount: 2), location: RecordLocation(partition: 3, offset: 10)),
            LocatedChunk(id: ChunkID(shard: 1, firstRow: 2, rowCount: 2), location: RecordLocation(partition: 3, offset: 11)),
        ])

    static var pass2TaskID: UInt64 { pass2Task.taskID }

    /// SFDA's mixing task over the pass-2 chunks: it reads the first fit's two parts.
    static let sfdaMixTask = TaskFrame(
        run: "r1", pass: .sfdaMix,
        conditional: [RecordLocation(partition: 2, offset: 40), RecordLocation(partition: 2, offset: 41)],
        chunks: pass2Task.chunks)

    /// SFDA's scoring task over the same chunks: the first fit's two parts, then the second fit's one.
    static let sfdaScoreTask = TaskFrame(
        run: "r1", pass: .sfdaScore,
        conditional: [
            RecordLocation(partition: 2, offset: 40), RecordLocation(partition: 2, offset: 41), RecordLocation(partition: 3, offset: 50),
        ],
        chunks: pass2Task.chunks)

    /// make_fixtures.py's STATISTIC_ROWS: 4 rows of D = 2 features with their labels (Y = 2).
    static let statisticRows: (labels: [Int32], features: [Double]) = ([0, 0, 1, 1], [1, 1, 3, 2, -4, 0.5, -2, 3.5])
    /// Their per-class variances (section 2) as the Python encoder computed them: counts, means, Σ(f − μ_c)².
    static let classVariancesValues: [Double] = [2, 2, 2, 1.5, -3, 2, 2, 0.5, 2, 4.5]
    /// Their per-class scatter matrices (section 3): counts, means, each class's upper triangle.
    static let classScattersValues: [Double] = [2, 2, 2, 1.5, -3, 2, 2, 1, 0.5, 2, 3, 4.5]
    /// Their within-class scatter (section 4): counts, means, the pooled upper triangle.
    static let withinClassScatterValues: [Double] = [2, 2, 2, 1.5, -3, 2, 4, 4, 5]
    /// make_fixtures.py's MIXED_ROWS, and their within-class scatter (an SFDA mixing task's result).
    static let mixedRows: (labels: [Int32], features: [Double]) = ([0, 0, 1, 1], [1.5, 0.5, 2.5, 2.5, -3.5, 1.5, -2.5, 2.5])
    static let mixedWithinClassScatterValues: [Double] = [2, 2, 2, 1.5, -3, 2, 1, 1.5, 2.5]

    /// make_fixtures.py's SFDA_FIT: K = 2 classes (labels 0 and 2), D = 2, as a 6 × 3 matrix.
    static let sfdaFitMatrix: [Double] = [
        0.5, -1.25, -0.75,  // class 0's coefficients, intercept
        -0.5, 1.25, -1.5,  // class 2's
        -3, 2, 0,  // the other classes' mean for class 0, label 0
        2, 1.5, 2,  // for class 2, label 2
        -0.5, 1.75, 0,  // μ, 0
        0.0625, 0, 0,  // the shrinkage, zeros
    ]

    /// A statistic of `rows` (D = 2, Y = 2), as LEEPCore accumulates it.
    static func statistic<S: MergeableStatistic>(
        _: S.Type, of rows: (labels: [Int32], features: [Double])
    ) throws -> S {
        var statistic = S(featureWidth: 2, targetClasses: 2)
        try rows.features.withUnsafeBufferPointer { features in
            try rows.labels.withUnsafeBufferPointer { labels in
                try statistic.add(FeatureChunk(values: .float64(features), labels: labels, width: 2))
            }
        }
        return statistic
    }

    static let vitCafe = RunIdentity(id: "r1", model: "vit-b/16", dataset: "café")

    static func value(_ name: String) -> FrameValue? {
        let r1 = RunIdentity(id: "r1", model: "m", dataset: "d")
        let partialID = PartialFrame.id(run: "r1", chunks: partialChunks)
        switch name {
        case "chunk_f32.bin":
            return .chunk(ChunkValues(
                run: r1, shard: 0, shardCount: 1, firstRow: 0, sourceClasses: 3, targetClasses: 2, labels: [0, 1],
                probabilities: .float32([0.5, 0.25, 0.25, 0.125, 0.625, 0.25])))
        case "chunk_f64.bin":
            return .chunk(ChunkValues(
                run: RunIdentity(id: "r1", model: "model-b", dataset: "d"), shard: 1, shardCount: 2, firstRow: 2,
                sourceClasses: 3, targetClasses: 3, labels: [2, 0], probabilities: .float64([0.1, 0.2, 0.7, 0.6, 0.3, 0.1])))
        case "chunk_f16.bin":
            return .chunk(ChunkValues(
                run: r1, shard: 0, shardCount: 1, firstRow: 4, sourceClasses: 3, targetClasses: 2, labels: [1, 1, 0],
                probabilities: .float16([0.25, 0.5, 0.25, 1, 0, 0, 0.125, 0.375, 0.5])))
        case "chunk_features_f32.bin":
            return .chunk(ChunkValues(
                run: r1, shard: 0, shardCount: 1, firstRow: 0, sourceClasses: 3, targetClasses: 2, labels: [0, 1, 1],
                probabilities: .float16([0.5, 0.25, 0.25, 0.125, 0.625, 0.25, 0, 0, 1]),
                features: .init(width: 4, values: .float32([1.5, -2, 0, 3.25, 0.5, 0.25, -0.125, 8, -1, 2, 4, -0.5]))))
        case "chunk_features_f16.bin":
            return .chunk(ChunkValues(
                run: RunIdentity(id: "r1", model: "model-b", dataset: "d"), shard: 1, shardCount: 2, firstRow: 2,
                sourceClasses: 3, targetClasses: 3, labels: [2, 0], probabilities: .float64([0.1, 0.2, 0.7, 0.6, 0.3, 0.1]),
                features: .init(width: 3, values: .float16([0.5, -1, 2, 0, 1.5, -0.25]))))
        case "chunk_features_only_f32.bin":
            return .chunk(ChunkValues(
                run: r1, shard: 0, shardCount: 1, firstRow: 0, sourceClasses: 0, targetClasses: 2, labels: [0, 1, 1],
                probabilities: nil,
                features: .init(width: 4, values: .float32([1.5, -2, 0, 3.25, 0.5, 0.25, -0.125, 8, -1, 2, 4, -0.5]))))
        case "chunk_features_only_f16.bin":
            return .chunk(ChunkValues(
                run: RunIdentity(id: "r1", model: "model-b", dataset: "d"), shard: 1, shardCount: 2, firstRow: 2,
                sourceClasses: 0, targetClasses: 3, labels: [2, 0], probabilities: nil,
                features: .init(width: 3, values: .float16([0.5, -1, 2, 0, 1.5, -0.25]))))
        case "manifest_features_only.bin":
            return .manifest(ManifestFrame(
                run: RunIdentity(id: "r1", model: "clip-vit-b/16", dataset: "café"), shard: 0, shardCount: 1, sourceClasses: 0,
                targetClasses: 37, shardRows: 300, totalChunks: 2, partIndex: 0, partCount: 1,
                chunks: [
                    LocatedChunk(id: ChunkID(shard: 0, firstRow: 0, rowCount: 256), location: RecordLocation(partition: 1, offset: 4)),
                    LocatedChunk(id: ChunkID(shard: 0, firstRow: 256, rowCount: 44), location: RecordLocation(partition: 6, offset: 1 << 40)),
                ],
                featureWidth: 768))
        case "partial_v3_features_only.bin":
            return .partial(PartialFrame(
                run: vitCafe, partialID: partialID, targetClasses: 2, sourceClasses: 0, featureWidth: 2, sampleCount: 5,
                chunks: partialChunks, part: MatrixPart(partIndex: 1, partCount: 2, cellStart: 7, cellCount: 7),
                kind: .moments, featureValues: [7.0, -0.5, 0.125, 3.0, 0.001, 2.5, -4.0]))
        case "manifest_features.bin":
            return .manifest(ManifestFrame(
                run: vitCafe, shard: 0, shardCount: 1, sourceClasses: 1000, targetClasses: 37, shardRows: 300, totalChunks: 2,
                partIndex: 0, partCount: 1,
                chunks: [
                    LocatedChunk(id: ChunkID(shard: 0, firstRow: 0, rowCount: 248), location: RecordLocation(partition: 3, offset: 9)),
                    LocatedChunk(id: ChunkID(shard: 0, firstRow: 248, rowCount: 52), location: RecordLocation(partition: 0, offset: 1 << 40)),
                ],
                featureWidth: 2048))
        case "manifest.bin":
            return .manifest(ManifestFrame(
                run: RunIdentity(id: "r1", model: "vit-b/16", dataset: "café"), shard: 1, shardCount: 2, sourceClasses: 3,
                targetClasses: 3, shardRows: 5, totalChunks: 2, partIndex: 0, partCount: 1,
                chunks: [
                    LocatedChunk(id: ChunkID(shard: 1, firstRow: 0, rowCount: 3), location: RecordLocation(partition: 2, offset: 17)),
                    LocatedChunk(
                        id: ChunkID(shard: 1, firstRow: 3, rowCount: 2), location: RecordLocation(partition: 5, offset: 0x01_0203_0405)),
                ],
                eepAccuracy: true))
        case "partial.bin", "partial_v3.bin", "partial_v1.bin":
            // One part in three versions: the names are missing from version 1 only.
            return .partial(PartialFrame(
                run: name == "partial_v1.bin" ? RunIdentity(id: "r1", model: "", dataset: "") : vitCafe,
                partialID: partialID, targetClasses: 2, sourceClasses: 3,
                sampleCount: 5, chunks: partialChunks, part: MatrixPart(partIndex: 1, partCount: 2, cellStart: 3, cellCount: 3),
                jointSums: [0.5, 1.25, 2.0], argmaxCounts: [1, 0, 3]))
        case "partial_v3_joint.bin":
            return .partial(PartialFrame(
                run: vitCafe, partialID: partialID, targetClasses: 2, sourceClasses: 3, featureWidth: 2, sampleCount: 5,
                chunks: partialChunks, part: MatrixPart(partIndex: 0, partCount: 3, cellStart: 0, cellCount: 6),
                jointSums: [0.5, 1.25, 2.0, 0.25, 0.0, 1.0], argmaxCounts: [1, 0, 3, 0, 1, 0]))
        case "partial_v3_features.bin":
            return .partial(PartialFrame(
                run: vitCafe, partialID: partialID, targetClasses: 2, sourceClasses: 3, featureWidth: 2, sampleCount: 5,
                chunks: partialChunks, part: MatrixPart(partIndex: 2, partCount: 3, cellStart: 7, cellCount: 7),
                kind: .moments, featureValues: [7.0, -0.5, 0.125, 3.0, 0.001, 2.5, -4.0]))
        case "partial_v3_class_variances.bin":
            return .partial(PartialFrame(
                run: vitCafe, partialID: partialID, targetClasses: 2, sourceClasses: 3, featureWidth: 2, sampleCount: 4,
                chunks: partialChunks, part: MatrixPart(partIndex: 2, partCount: 4, cellStart: 0, cellCount: 10),
                kind: .classVariances, featureValues: classVariancesValues))
        case "partial_v3_class_scatters.bin":
            return .partial(PartialFrame(
                run: vitCafe, partialID: partialID, targetClasses: 2, sourceClasses: 0, featureWidth: 2, sampleCount: 4,
                chunks: partialChunks, part: MatrixPart(partIndex: 2, partCount: 3, cellStart: 0, cellCount: 12),
                kind: .classScatters, featureValues: classScattersValues))
        case "partial_v3_within_class_scatter.bin":
            return .partial(PartialFrame(
                run: vitCafe, partialID: partialID, targetClasses: 2, sourceClasses: 3, featureWidth: 2, sampleCount: 4,
                chunks: partialChunks, part: MatrixPart(partIndex: 8, partCount: 9, cellStart: 6, cellCount: 3),
                kind: .withinClassScatter, featureValues: Array(withinClassScatterValues[6...])))
        case "task_sfda_mix.bin":
            return .task(sfdaMixTask)
        case "task_sfda_score.bin":
            return .task(sfdaScoreTask)
        case "conditional_sfda_fit.bin":
            return .conditional(ConditionalFrame(
                run: "r1", targetClasses: 6, sourceClasses: 3, part: MatrixPart(partIndex: 0, partCount: 1, cellStart: 0, cellCount: 18),
                values: sfdaFitMatrix))
        case "task_result_sfda_mix.bin":
            return .taskResult(TaskResultFrame(
                run: "r1", taskID: sfdaMixTask.taskID, sampleCount: 4, logEEPSum: 0, hits: 0,
                statistics: .init(
                    targetClasses: 2, featureWidth: 2, part: MatrixPart(partIndex: 1, partCount: 2, cellStart: 6, cellCount: 3),
                    values: Array(mixedWithinClassScatterValues[6...]))))
        case "task_result_sfda_score.bin":
            return .taskResult(TaskResultFrame(run: "r1", taskID: sfdaScoreTask.taskID, sampleCount: 4, logEEPSum: 3.25, hits: 0))
        case "run_marker_sfda_mix.bin":
            return .runMarker(RunMarkerFrame(run: "r1", marker: .tasksIssued(pass: .sfdaMix, taskIDs: [sfdaMixTask.taskID, 2])))
        case "task_pass2.bin":
            return .task(pass2Task)
        case "task_pass2_accuracy.bin":
            return .task(TaskFrame(
                run: "r1", pass: .eepWithAccuracy, conditional: [RecordLocation(partition: 0, offset: 7)], chunks: pass2Task.chunks))
        case "task_repair.bin":
            return .task(TaskFrame(
                run: "r1", pass: .repair, conditional: [],
                chunks: [LocatedChunk(id: ChunkID(shard: 1, firstRow: 2, rowCount: 2), location: RecordLocation(partition: 4, offset: 12))]))
        case "conditional.bin":
            return .conditional(ConditionalFrame(
                run: "r1", targetClasses: 2, sourceClasses: 3, part: MatrixPart(partIndex: 0, partCount: 2, cellStart: 0, cellCount: 4),
                values: [0.5, 0.25, 1.0, 0.5]))
        case "task_result.bin":
            return .taskResult(TaskResultFrame(run: "r1", taskID: pass2TaskID, sampleCount: 4, logEEPSum: -2.5, hits: 3))
        case "chunk_rejected.bin":
            return .chunkRejected(ChunkRejectedFrame(
                run: r1, chunk: ChunkID(shard: 0, firstRow: 0, rowCount: 2), reason: "row 1: sums to 1.5 (±0.001)"))
        case "run_marker_pass2.bin":
            return .runMarker(RunMarkerFrame(run: "r1", marker: .pass2Issued(taskIDs: [pass2TaskID, 1])))
        case "run_marker_closed.bin":
            return .runMarker(RunMarkerFrame(run: "r1", marker: .closed))
        case "partition_barrier.bin":
            return .partitionMarker(PartitionMarkerFrame(.barrier(token: 0xFEED_FACE_CAFE_BEEF)))
        case "partition_dead_lettered.bin":
            return .partitionMarker(PartitionMarkerFrame(.deadLettered(offset: 1_234_567)))
        case "row_sample.bin":
            return .rowSample(RowSampleFrame(
                run: RunIdentity(id: "r1", model: "resnet50", dataset: "cifar10"), chunk: ChunkID(shard: 1, firstRow: 1000, rowCount: 250),
                sourceClasses: 3, rows: [7, 191], labels: [2, 0], probabilities: [0.5, 0.25, 0.25, 0.125, 0.875, 0]))
        default:
            return nil
        }
    }
}

// MARK: - Round trips

/// Every frame type survives encode → decode with every field intact, over varied shapes.
@Suite struct RoundTripTests {
    func roundTrip(_ value: FrameValue, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let bytes = value.encoded()
        let decoded = try Frame.decode(bytes)
        #expect(FrameValue(decoded) == value, sourceLocation: sourceLocation)
        // Encoding is canonical: decoding then encoding again gives the same bytes.
        #expect(FrameValue(decoded).encoded() == bytes, sourceLocation: sourceLocation)
    }

    @Test func chunksOfEveryTypeAndShape() throws {
        var random = SplitMix64(seed: 1)
        let runs = [
            RunIdentity(id: "r", model: "", dataset: ""),
            RunIdentity(id: "run-ß∑🙂", model: "vit-b/16", dataset: "ImageNet-21k"),
            RunIdentity(id: String(repeating: "x", count: 300), model: "m", dataset: "d"),
        ]
        for run in runs {
            for rows in 1...9 {
                for z in [1, 2, 3, 7] {
                    let labels = (0..<rows).map { _ in Int32.random(in: 0..<5, using: &random) }
                    let values = (0..<rows * z).map { _ in Double.random(in: 0..<1, using: &random) }
                    let firstRow = UInt64.random(in: 0..<1_000_000, using: &random)
                    for probabilities: ChunkValues.Probabilities in [
                        .float16(values.map { Float16($0) }), .float32(values.map { Float($0) }), .float64(values),
                    ] {
                        let chunk = ChunkValues(
                            run: run, shard: 2, shardCount: 3, firstRow: firstRow, sourceClasses: z, targetClasses: 5,
                            labels: labels, probabilities: probabilities)
                        try roundTrip(.chunk(chunk))
                        #expect(chunk.encoded().count == Self.documentedChunkLength(chunk))
                    }
                }
            }
        }
    }

    /// The length docs/wire-format.md gives: header, strings, 29 fixed bytes (34 with
    /// features, 33 with features alone), pad8, labels, pad8, θ, and with features pad8 and the
    /// features.
    static func documentedChunkLength(_ chunk: ChunkValues) -> Int {
        func roundUp(_ n: Int) -> Int { (n + 7) / 8 * 8 }
        let strings = [chunk.run.id, chunk.run.model, chunk.run.dataset].reduce(0) { $0 + 2 + $1.utf8.count }
        let rows = chunk.labels.count
        let fixed = switch (chunk.probabilities, chunk.features) {
        case (_?, nil): 29
        case (_?, _?): 34
        case (nil, _): 33
        }
        let theta = roundUp(roundUp(8 + strings + fixed) + 4 * rows) + rows * chunk.sourceClasses * (chunk.probabilities?.size ?? 0)
        guard let features = chunk.features else { return theta }
        return roundUp(theta) + rows * features.width * features.values.size
    }

    /// Chunks of features alone (version 3) of every feature type, width and row count: they
    /// round-trip, have the documented length, and carry no θ.
    @Test func chunksOfFeaturesAlone() throws {
        var random = SplitMix64(seed: 17)
        for run in [RunIdentity(id: "r", model: "", dataset: ""), RunIdentity(id: "run-ß∑🙂", model: "dinov2-vit-l/14", dataset: "d")] {
            for rows in [1, 2, 3, 5, 8] {
                for width in [1, 2, 3, 5, 64] {
                    let labels = (0..<rows).map { _ in Int32.random(in: 0..<5, using: &random) }
                    let features = (0..<rows * width).map { _ in Double.random(in: -50..<50, using: &random) }
                    for values: ChunkValues.Probabilities in [
                        .float16(features.map { Float16($0) }), .float32(features.map { Float($0) }), .float64(features),
                    ] {
                        let chunk = ChunkValues(
                            run: run, shard: 1, shardCount: 2, firstRow: UInt64(rows * 1000), sourceClasses: 0, targetClasses: 5,
                            labels: labels, probabilities: nil, features: .init(width: width, values: values))
                        try roundTrip(.chunk(chunk))
                        #expect(chunk.encoded().count == Self.documentedChunkLength(chunk))
                        #expect(chunk.encoded()[4] == 3)
                    }
                }
            }
        }
    }

    @Test func chunksWithFeaturesOfEveryType() throws {
        var random = SplitMix64(seed: 13)
        let run = RunIdentity(id: "run-ß∑🙂", model: "vit-b/16", dataset: "d")
        for rows in [1, 2, 3, 5, 8] {
            for z in [1, 3, 7] {
                for width in [1, 2, 3, 5, 64] {
                    let labels = (0..<rows).map { _ in Int32.random(in: 0..<5, using: &random) }
                    let theta = (0..<rows * z).map { _ in Double.random(in: 0..<1, using: &random) }
                    // Features are activations: any sign, any size (only finiteness is the worker's to check).
                    let features = (0..<rows * width).map { _ in Double.random(in: -50..<50, using: &random) }
                    for probabilities: ChunkValues.Probabilities in [
                        .float16(theta.map { Float16($0) }), .float32(theta.map { Float($0) }), .float64(theta),
                    ] {
                        for values: ChunkValues.Probabilities in [
                            .float16(features.map { Float16($0) }), .float32(features.map { Float($0) }), .float64(features),
                        ] {
                            let chunk = ChunkValues(
                                run: run, shard: 0, shardCount: 2, firstRow: UInt64(rows * 1000), sourceClasses: z, targetClasses: 5,
                                labels: labels, probabilities: probabilities, features: .init(width: width, values: values))
                            try roundTrip(.chunk(chunk))
                            #expect(chunk.encoded().count == Self.documentedChunkLength(chunk))
                            #expect(chunk.encoded()[4] == 2)
                        }
                    }
                }
            }
        }
    }

    /// Features are encoded straight from memory: here rows 3..<6 of a 10×D matrix, as a view
    /// into a memory-mapped .npy file would give them.
    @Test func featuresEncodeFromAViewOfLargerMemory() throws {
        let width = 5
        let matrix = (0..<(10 * width)).map { Float($0) - 20.5 }
        let theta: [Double] = [0.5, 0.5, 1, 0, 0.25, 0.75]
        let labels: [Int32] = [1, 0, 1]
        let bytes = matrix.withUnsafeBytes { all in
            theta.withUnsafeBufferPointer { theta in
                labels.withUnsafeBufferPointer { labels in
                    ChunkFrame.encode(
                        run: RunIdentity(id: "r", model: "m", dataset: "d"), shard: 0, shardCount: 1, targetClasses: 2,
                        rows: PredictionChunk(probabilities: theta, labels: labels, sourceClasses: 2, firstRow: 3),
                        features: FeatureRowsView(
                            width: width, type: .float32, bytes: UnsafeRawBufferPointer(rebasing: all[(3 * width * 4)..<(6 * width * 4)])))
                }
            }
        }
        guard case .chunk(let chunk) = try Frame.decode(bytes), let features = chunk.features, case .float32(let values) = features.values
        else {
            Issue.record("not a chunk with float32 features")
            return
        }
        #expect(features.width == width && features.rowCount == 3 && features.values.type == .float32)
        #expect(values == Array(matrix[(3 * width)..<(6 * width)]))
    }

    @Test func chunkValuesArePassedThroughUnchecked() throws {
        // Decoding checks structure only: NaN and negative values reach the worker's row check.
        let chunk = ChunkValues(
            run: RunIdentity(id: "r", model: "m", dataset: "d"), shard: 0, shardCount: 1, firstRow: 0, sourceClasses: 2,
            targetClasses: 1, labels: [7], probabilities: .float32([.nan, -1]))
        guard case .chunk(let decoded) = try Frame.decode(chunk.encoded()), case .float32(let values) = decoded.probabilities else {
            Issue.record("not a float32 chunk")
            return
        }
        #expect(values[0].isNaN && values[1] == -1 && decoded.labels == [7])
    }

    @Test(arguments: [0, 1, 4096, WireFormat.maxFeatureWidth])
    func manifests(featureWidth: Int) throws {
        // A run of features alone (Z = 0) declares its D: version 2, the same layout.
        if featureWidth > 0 {
            try roundTrip(.manifest(ManifestFrame(
                run: RunIdentity(id: "r", model: "m", dataset: "d"), shard: 0, shardCount: 1, sourceClasses: 0, targetClasses: 3,
                shardRows: 0, totalChunks: 0, partIndex: 0, partCount: 1, chunks: [], featureWidth: featureWidth)))
        }
        let run = RunIdentity(id: "r", model: "m", dataset: "d")
        for count in [0, 1, 5, 1000] {
            let chunks = (0..<count).map { index in
                LocatedChunk(
                    id: ChunkID(shard: 4, firstRow: UInt64(index) * 64, rowCount: 64),
                    location: RecordLocation(partition: Int32(index % 8) - 1, offset: Int64(index) << 33))
            }
            try roundTrip(.manifest(ManifestFrame(
                run: run, shard: 4, shardCount: 5, sourceClasses: 21843, targetClasses: 1, shardRows: UInt64(count) * 64,
                totalChunks: UInt32(count), partIndex: 2, partCount: 3, chunks: chunks, eepAccuracy: count % 2 == 1,
                featureWidth: featureWidth)))
            let manifest = ManifestFrame(
                run: run, shard: 0, shardCount: 1, sourceClasses: 3, targetClasses: 2, shardRows: 0, totalChunks: 0, partIndex: 0,
                partCount: 1, chunks: [], featureWidth: featureWidth)
            // Version 2 is version 1 with the 4-byte feature_width.
            #expect(manifest.encoded()[4] == (featureWidth == 0 ? 1 : 2))
            #expect(manifest.encoded().count == 8 + 9 + 41 + (featureWidth == 0 ? 0 : 4))
        }
    }

    @Test func partialsSplitIntoPartsAndReassemble() throws {
        let (y, z) = (7, 5)
        let sums = (0..<(y * z)).map { Double($0) * 0.5 }
        let counts = (0..<(y * z)).map { Int64($0) - 3 }
        let chunks = (0..<10).map { ChunkID(shard: UInt32($0 % 3), firstRow: UInt64($0 * 100), rowCount: 100) }
        let id = PartialFrame.id(run: "r", chunks: chunks)
        #expect(id == PartialFrame.id(run: "r", chunks: chunks.reversed()), "the id must not depend on the order")
        var reassembled = [Double](repeating: -1, count: y * z)
        var reassembledCounts = [Int64](repeating: 0, count: y * z)
        for maxPayload in [16, 50, 160, 10_000] {
            for part in MatrixPart.split(cells: y * z, bytesPerCell: PartialFrame.bytesPerCell, maxPayloadBytes: maxPayload) {
                let cells = part.cellStart..<(part.cellStart + part.cellCount)
                let frame = PartialFrame(
                    run: RunIdentity(id: "r", model: "m", dataset: "d"), partialID: id, targetClasses: y, sourceClasses: z, sampleCount: 1000, chunks: chunks, part: part,
                    jointSums: Array(sums[cells]), argmaxCounts: Array(counts[cells]))
                try roundTrip(.partial(frame))
                guard case .partial(let decoded) = try Frame.decode(frame.encoded()) else { continue }
                reassembled.replaceSubrange(cells, with: decoded.jointSums)
                reassembledCounts.replaceSubrange(cells, with: decoded.argmaxCounts)
            }
            #expect(reassembled == sums && reassembledCounts == counts)
        }
    }

    /// A partial of Y = 10, Z = 7 and D = 512 (L = 137,483 feature statistics) cut by
    /// `PartialFrame.parts` under message limits from 4,096 + 50 cells up to far more than
    /// needed: every part fits, the parts are numbered over both sections, each section is
    /// covered exactly once, and the decoded parts reassemble to the same values.
    @Test(arguments: [4096 + 48 + 800, 20_000, 100_000, 1_000_000, 64 << 20])
    func partialPartsCutBothSectionsAndReassemble(messageLimit: Int) throws {
        let (y, z, d) = (10, 7, 512)
        let statistics = FeatureStatistics.flattenedCount(targetClasses: y, featureWidth: d)
        #expect(statistics == 137_483)
        var random = SplitMix64(seed: 512)
        let sums = (0..<(y * z)).map { _ in Double.random(in: 0..<100, using: &random) }
        let counts = (0..<(y * z)).map { _ in Int64.random(in: 0..<1000, using: &random) }
        let values = (0..<statistics).map { _ in Double.random(in: -1e6..<1e6, using: &random) }
        let chunks = (0..<3).map { ChunkID(shard: 0, firstRow: UInt64($0) * 100, rowCount: 100) }
        let run = RunIdentity(id: "r", model: "m", dataset: "d")
        let parts = PartialFrame.parts(
            run: run, partialID: PartialFrame.id(run: "r", chunks: chunks), targetClasses: y, sourceClasses: z, sampleCount: 300,
            chunks: chunks, jointSums: sums, argmaxCounts: counts, featureWidth: d, statistics: [(.moments, values)],
            messageLimit: messageLimit)
        let budget = messageLimit - 4096 - 16 * chunks.count
        let jointParts = (y * z + max(1, budget / 16) - 1) / max(1, budget / 16)
        let featureParts = (statistics + max(1, budget / 8) - 1) / max(1, budget / 8)
        #expect(parts.count == jointParts + featureParts)
        if messageLimit == 20_000 { #expect(parts.count == 1 + 70, "15,856 bytes a part: 70 cells, or 1,982 values") }
        var (joint, jointCounts, features) = ([Double](repeating: .nan, count: y * z), [Int64](repeating: -1, count: y * z),
                                               [Double](repeating: .nan, count: statistics))
        var next = (joint: 0, features: 0)
        for (index, frame) in parts.enumerated() {
            #expect(frame.part.partIndex == UInt32(index) && frame.part.partCount == UInt32(parts.count))
            #expect(frame.section == (index < jointParts ? .joint : .statistic(.moments)), "joint parts come first")
            #expect(frame.featureWidth == d && frame.chunks == chunks && frame.sampleCount == 300)
            let bytes = frame.encoded()
            #expect(bytes.count <= messageLimit, "part \(index) of \(bytes.count) bytes")
            try roundTrip(.partial(frame))
            guard case .partial(let decoded) = try Frame.decode(bytes) else { continue }
            let range = decoded.part.cellStart..<(decoded.part.cellStart + decoded.part.cellCount)
            switch decoded.section {
            case .joint:
                #expect(range.lowerBound == next.joint && decoded.featureValues.isEmpty)
                next.joint = range.upperBound
                joint.replaceSubrange(range, with: decoded.jointSums)
                jointCounts.replaceSubrange(range, with: decoded.argmaxCounts)
            case .statistic:
                #expect(range.lowerBound == next.features && decoded.jointSums.isEmpty && decoded.argmaxCounts.isEmpty)
                next.features = range.upperBound
                features.replaceSubrange(range, with: decoded.featureValues)
            }
        }
        #expect(next.joint == y * z && next.features == statistics)
        #expect(joint == sums && jointCounts == counts && features == values)
    }

    /// Without features, `parts` gives the joint cells alone, as version-3 frames with
    /// feature_width 0, cut as the worker cut them before (`MatrixPart.split`).
    @Test func partialPartsWithoutFeatures() throws {
        let (y, z) = (4, 1000)
        let sums = (0..<(y * z)).map { Double($0) }
        let counts = (0..<(y * z)).map { Int64($0) }
        let chunks = [ChunkID(shard: 1, firstRow: 0, rowCount: 10)]
        let parts = PartialFrame.parts(
            run: RunIdentity(id: "r", model: "m", dataset: "d"), partialID: PartialFrame.id(run: "r", chunks: chunks), targetClasses: y,
            sourceClasses: z, sampleCount: 10, chunks: chunks, jointSums: sums, argmaxCounts: counts, featureWidth: 0, statistics: [],
            messageLimit: 4096 + 16 + 16_000)
        #expect(parts.map(\.part) == MatrixPart.split(cells: y * z, bytesPerCell: 16, maxPayloadBytes: 16_000))
        #expect(parts.count == 4 && parts.allSatisfy { $0.section == .joint && $0.featureWidth == 0 && $0.featureValues.isEmpty })
        for part in parts {
            try roundTrip(.partial(part))
            #expect(part.encoded()[4] == 3)
        }
    }

    /// A partial of a run of features alone (Z = 0) has no joint cells: `parts` gives section-1
    /// parts only, numbered from 0, cut as `MatrixPart.split` cuts the L statistics.
    @Test(arguments: [4096 + 48 + 800, 100_000, 1_000_000])
    func partialPartsOfFeaturesAlone(messageLimit: Int) throws {
        let (y, d) = (10, 512)
        let statistics = FeatureStatistics.flattenedCount(targetClasses: y, featureWidth: d)
        let values = (0..<statistics).map { Double($0) - 1e4 }
        let chunks = (0..<3).map { ChunkID(shard: 0, firstRow: UInt64($0) * 100, rowCount: 100) }
        let parts = PartialFrame.parts(
            run: RunIdentity(id: "r", model: "m", dataset: "d"), partialID: PartialFrame.id(run: "r", chunks: chunks),
            targetClasses: y, sourceClasses: 0, sampleCount: 300, chunks: chunks, jointSums: [], argmaxCounts: [],
            featureWidth: d, statistics: [(.moments, values)], messageLimit: messageLimit)
        let expected = MatrixPart.split(cells: statistics, bytesPerCell: 8, maxPayloadBytes: messageLimit - 4096 - 16 * chunks.count)
        #expect(parts.map(\.part) == expected, "numbered from 0 over the feature statistics alone")
        var reassembled = [Double](repeating: .nan, count: statistics)
        for part in parts {
            #expect(part.section == .statistic(.moments) && part.sourceClasses == 0 && part.jointSums.isEmpty)
            #expect(part.encoded().count <= messageLimit)
            try roundTrip(.partial(part))
            reassembled.replaceSubrange(part.part.cellStart..<(part.part.cellStart + part.part.cellCount), with: part.featureValues)
        }
        #expect(reassembled == values)
    }

    @Test func tasks() throws {
        let chunks = (0..<40).map { (index: Int) -> LocatedChunk in
            let id = ChunkID(shard: UInt32(index % 4), firstRow: UInt64(index / 4) * 10, rowCount: 10)
            return LocatedChunk(id: id, location: RecordLocation(partition: Int32(index % 8), offset: Int64(index)))
        }
        let conditional = (0..<3).map { RecordLocation(partition: 1, offset: Int64($0) + 100) }
        for pass in [TaskFrame.Pass.repair, .eep] {
            let task = TaskFrame(run: "run-ü", pass: pass, conditional: pass == .eep ? conditional : [], chunks: chunks)
            try roundTrip(.task(task))
            let shuffled = TaskFrame(
                run: "run-ü", pass: pass, conditional: task.conditional, chunks: chunks.reversed())
            #expect(shuffled.taskID == task.taskID, "the id must not depend on the order of the chunks")
            try roundTrip(.task(shuffled))
        }
        // A repair task may carry conditional locations: decoding accepts them (workers ignore them).
        try roundTrip(.task(TaskFrame(run: "r", pass: .repair, conditional: conditional, chunks: [])))
        // Different passes over the same chunks are different tasks.
        #expect(TaskFrame.id(run: "r", pass: .repair, chunks: []) != TaskFrame.id(run: "r", pass: .eep, chunks: []))
    }

    @Test func conditionalsSplitIntoParts() throws {
        let (y, z) = (3, 11)
        let values = (0..<(y * z)).map { 1 / Double($0 + 1) }
        for maxPayload in [8, 64, 1_000_000] {
            let parts = MatrixPart.split(cells: y * z, bytesPerCell: ConditionalFrame.bytesPerCell, maxPayloadBytes: maxPayload)
            for part in parts {
                try roundTrip(.conditional(ConditionalFrame(
                    run: "r", targetClasses: y, sourceClasses: z, part: part,
                    values: Array(values[part.cellStart..<(part.cellStart + part.cellCount)]))))
            }
        }
    }

    @Test func taskResultsRejectionsAndMarkers() throws {
        try roundTrip(.taskResult(TaskResultFrame(run: "r", taskID: .max, sampleCount: 0, logEEPSum: -.infinity, hits: 0)))
        try roundTrip(.taskResult(TaskResultFrame(run: "r", taskID: 0, sampleCount: 1 << 40, logEEPSum: -1e300, hits: 1 << 39)))
        let run = RunIdentity(id: "r", model: "m", dataset: "d")
        try roundTrip(.chunkRejected(ChunkRejectedFrame(run: run, chunk: ChunkID(shard: 0, firstRow: 0, rowCount: 1), reason: "")))
        try roundTrip(.runMarker(RunMarkerFrame(run: "r", marker: .repairIssued(chunks: 77))))
        // Reasons are capped at about 4,000 bytes (a character cut in two becomes U+FFFD); what
        // is kept still round-trips.
        let long = ChunkRejectedFrame(
            run: run, chunk: ChunkID(shard: 9, firstRow: UInt64(Int64.max) - UInt64(UInt32.max), rowCount: .max), reason: "x" + String(repeating: "é", count: 3000))
        #expect(long.reason.utf8.count <= 4002)
        try roundTrip(.chunkRejected(long))
        try roundTrip(.runMarker(RunMarkerFrame(run: "r", marker: .pass2Issued(taskIDs: []))))
        try roundTrip(.runMarker(RunMarkerFrame(run: "r", marker: .pass2Issued(taskIDs: (0..<500).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 }))))
        try roundTrip(.runMarker(RunMarkerFrame(run: "r", marker: .closed)))
    }

    /// SFDA's passes: tasks of passes 4 and 5 with their fits' parts, markers of the tasks
    /// issued, and mixing results cut into parts that reassemble, each within the message limit.
    @Test func sfdaTasksMarkersAndResults() throws {
        let chunks = (0..<12).map { (index: Int) -> LocatedChunk in
            LocatedChunk(
                id: ChunkID(shard: UInt32(index % 3), firstRow: UInt64(index / 3) * 50, rowCount: 50),
                location: RecordLocation(partition: Int32(index % 4), offset: Int64(index) << 20))
        }
        let fits = (0..<5).map { RecordLocation(partition: 3, offset: Int64($0) + 7) }
        for pass in [TaskFrame.Pass.sfdaMix, .sfdaScore] {
            let task = TaskFrame(run: "run-ü", pass: pass, conditional: fits, chunks: chunks)
            try roundTrip(.task(task))
            #expect(TaskFrame(run: "run-ü", pass: pass, conditional: fits, chunks: chunks.reversed()).taskID == task.taskID)
            for other in [TaskFrame.Pass.repair, .eep, .eepWithAccuracy, .sfdaMix, .sfdaScore] where other != pass {
                #expect(TaskFrame.id(run: "run-ü", pass: other, chunks: chunks.map(\.id)) != task.taskID)
            }
            for ids in [[], [UInt64.max], (0..<300).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 }] {
                try roundTrip(.runMarker(RunMarkerFrame(run: "r", marker: .tasksIssued(pass: pass, taskIDs: ids))))
            }
        }
        // An SFDA scoring result is a version-1 result.
        let score = TaskResultFrame(run: "r", taskID: 9, sampleCount: 1 << 33, logEEPSum: 12345.5, hits: 0)
        try roundTrip(.taskResult(score))
        #expect(score.encoded()[4] == 1)
        // A mixing result of Y = 7, D = 33 (W: 7 + 231 + 561 = 799 values) in parts.
        let (y, d) = (7, 33)
        let count = WithinClassScatter.flattenedCount(targetClasses: y, featureWidth: d)
        #expect(count == 799)
        let values = (0..<count).map { Double($0) * 0.25 - 3 }
        for limit in [4096 + 8, 4096 + 800, 20_000, 1_000_000] {
            let parts = TaskResultFrame.parts(
                run: "run-ü", taskID: 77, sampleCount: 1000, statistics: values, targetClasses: y, featureWidth: d, messageLimit: limit)
            #expect(parts.count == (count + (limit - 4096) / 8 - 1) / ((limit - 4096) / 8))
            var reassembled = [Double](repeating: .nan, count: count)
            for (index, part) in parts.enumerated() {
                let statistics = try #require(part.statistics)
                #expect(statistics.part.partIndex == UInt32(index) && statistics.part.partCount == UInt32(parts.count))
                #expect(part.sampleCount == 1000 && part.logEEPSum == 0 && part.hits == 0)
                #expect(part.encoded().count <= limit && part.encoded()[4] == 2)
                try roundTrip(.taskResult(part))
                reassembled.replaceSubrange(
                    statistics.part.cellStart..<(statistics.part.cellStart + statistics.part.cellCount), with: statistics.values)
            }
            #expect(reassembled == values)
        }
    }

    /// Partials of every statistic section (per-class scatters or, for another plan, the
    /// within-class scatter) cut under small limits: every section is covered once, in order.
    @Test(arguments: [4096 + 32 + 64, 4096 + 32 + 1000, 1_000_000])
    func partialPartsOfEveryStatistic(messageLimit: Int) throws {
        let (y, z, d) = (3, 2, 5)
        let kinds: [StatisticKind] = [.moments, .classVariances, .classScatters, .withinClassScatter]
        let statistics = kinds.map { kind in
            (kind: kind, values: (0..<kind.statisticType.flattenedCount(targetClasses: y, featureWidth: d)).map { Double($0) + 0.5 })
        }
        #expect(statistics.map(\.values.count) == [3 + 5 + 15 + 5 + 1 + 15, 3 + 30, 3 + 15 + 45, 3 + 15 + 15])
        let chunks = [ChunkID(shard: 0, firstRow: 0, rowCount: 7), ChunkID(shard: 1, firstRow: 0, rowCount: 9)]
        let parts = PartialFrame.parts(
            run: RunIdentity(id: "r", model: "m", dataset: "d"), partialID: PartialFrame.id(run: "r", chunks: chunks),
            targetClasses: y, sourceClasses: z, sampleCount: 16, chunks: chunks, jointSums: Array(repeating: 1, count: y * z),
            argmaxCounts: Array(repeating: 2, count: y * z), featureWidth: d, statistics: statistics, messageLimit: messageLimit)
        var next = [UInt8: Int]()
        var order: [UInt8] = []
        for (index, part) in parts.enumerated() {
            #expect(part.part.partIndex == UInt32(index) && part.part.partCount == UInt32(parts.count))
            #expect(part.encoded().count <= messageLimit)
            try roundTrip(.partial(part))
            let code = part.section.code
            if order.last != code { order.append(code) }
            #expect(part.part.cellStart == next[code, default: 0])
            next[code, default: 0] += part.part.cellCount
            if case .statistic(let kind) = part.section {
                let values = statistics.first { $0.kind == kind }!.values
                #expect(part.featureValues == Array(values[part.part.cellStart..<(part.part.cellStart + part.part.cellCount)]))
            }
        }
        #expect(order == [0, 1, 2, 3, 4], "the joint cells, then each statistic in the order given")
        #expect(next == [0: y * z, 1: statistics[0].values.count, 2: statistics[1].values.count,
                         3: statistics[2].values.count, 4: statistics[3].values.count])
    }

    @Test(arguments: [(0, 8, 100), (1, 8, 100), (35, 16, 16), (35, 16, 50), (35, 16, 1), (1000, 8, 999_000), (21843 * 10, 8, 995_904)])
    func matrixSplitTilesTheMatrix(cells: Int, bytesPerCell: Int, maxPayloadBytes: Int) {
        let parts = MatrixPart.split(cells: cells, bytesPerCell: bytesPerCell, maxPayloadBytes: maxPayloadBytes)
        #expect(!parts.isEmpty)
        var next = 0
        for (index, part) in parts.enumerated() {
            #expect(part.partIndex == UInt32(index) && part.partCount == UInt32(parts.count))
            #expect(part.cellStart == next)
            #expect(part.cellCount * bytesPerCell <= max(bytesPerCell, maxPayloadBytes))
            next += part.cellCount
        }
        #expect(next == cells)
    }
}

extension [Double] {
    /// A copy with `value` at `index`.
    func setting(_ index: Int, _ value: Double) -> [Double] {
        var copy = self
        copy[index] = value
        return copy
    }
}

/// A small seeded generator, so "random" tests are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
