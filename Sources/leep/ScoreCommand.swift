import ArgumentParser
import Foundation
import LEEPCore
import PredictionFiles

/// `leep score`: scores one model on one data set from NumPy files on this machine — LEEP, NCE
/// and EEP accuracy from its softmax outputs, every feature metric (`FeatureMetrics`, SFDA) from
/// its features.
struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Compute LEEP, NCE and the feature metrics of one model on one data set from .npy files.",
        discussion: """
            PREDICTIONS is an n×Z array of softmax outputs (float16, float32 or float64, C order), \
            for LEEP, NCE and EEP accuracy; FEATURES an n×D array of the source model's \
            penultimate-layer features (float16, float32 or float64, C order), for LogME, the \
            H-scores, GBC, TransRate and SFDA; give either or both. LABELS holds the n target \
            labels (any integer type). Files are memory-mapped: predictions are read twice, \
            features three times (SFDA's passes); memory beyond the mappings is \
            O(Y×Z + Y×D²) per thread (TransRate's per-class scatters, when Y·D² ≤ 2^26; above \
            that TransRate is unscored). A metric undefined for the data is printed as such \
            with its reason (null and "unscored" in --json) and the others still are. Prediction rows must \
            be finite, non-negative and sum to 1 within --sum-tolerance: pass probabilities, not \
            logits. Features must be finite.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Softmax outputs, an n×Z .npy file.", valueName: "path"))
    var predictions: String?

    @Option(name: .long, help: ArgumentHelp("Penultimate-layer features, an n×D .npy file.", valueName: "path"))
    var features: String?

    @Option(name: .long, help: ArgumentHelp("Target labels, a length-n .npy file of integers.", valueName: "path"))
    var labels: String

    @Option(name: .long, help: ArgumentHelp("Y, the number of target classes (default: max label + 1).", valueName: "Y"))
    var targetClasses: Int?

    @Option(name: .long, help: "Largest accepted |row sum − 1|.")
    var sumTolerance: Double = RowCheck.defaultSumTolerance

    @Option(name: .long, help: "Threads (default: one per core). Each scores a slice of the rows; the slices merge exactly.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Only these feature metrics, comma-separated (default: every one): "
                + FeatureMetrics.scoreKeys.joined(separator: ", ")
                + ". Only the statistics they read are gathered; SFDA's two further passes run only for sfda.",
            valueName: "keys"))
    var metrics: String?

    @Flag(
        name: .long, inversion: .prefixedNo,
        help: "Also compute EEP accuracy: Y dot products a sample in pass 2 instead of the one LEEP needs.")
    var eepAccuracy = false

    @Flag(
        name: .long,
        help: """
            Print one JSON object: leep, nce, eep_accuracy, source_classes (with --predictions), \
            logme, hscore, hscore_shrinkage, ledoit_wolf_shrinkage, gbc_diagonal, gbc_spherical, \
            transrate, sfda, sfda_shrinkage, feature_width and, for undefined metrics, unscored \
            (with --features), n, target_classes.
            """)
    var json = false

    @Flag(
        name: .long,
        help: """
            Print to standard error how long each phase took (open: the files mapped and the labels \
            checked; pass1; conditional; pass2; features; output), one "phase NAME SECONDS" line each.
            """)
    var phaseTimes = false

    func validate() throws {
        guard predictions != nil || features != nil else {
            throw ValidationError("give --predictions, --features or both")
        }
        if let targetClasses, targetClasses < 1 {
            throw ValidationError("--target-classes must be at least 1, got \(targetClasses)")
        }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        if metrics != nil {
            guard features != nil else { throw ValidationError("--metrics selects feature metrics: give --features too") }
            _ = try selection()
        }
        guard sumTolerance >= 0 && sumTolerance.isFinite else {
            throw ValidationError("--sum-tolerance must be a finite number ≥ 0, got \(sumTolerance)")
        }
    }

    func run() throws {
        var phases = PhaseTimes()
        let labelFile = try LabelFile(path: labels, targetClasses: targetClasses)
        // Both files are checked against the labels before either is scored.
        let pair = try predictions.map { path throws(FileError) in try PredictionPair(predictionsPath: path, labels: labelFile) }
        let featureFile = try features.map { path throws(FileError) in try FeatureFile(path: path, labels: labelFile) }
        phases.lap("open")
        let leep = try pair.map { pair in
            try FileScorer.score(
                pair, check: RowCheck(sumTolerance: sumTolerance), threads: threads, accuracy: eepAccuracy, phases: &phases)
        }
        let selection = try selection()
        let featureScores = try featureFile.map { file throws(FileError) in
            try file.metricReport(threads: threads, selection: selection)
        }
        if featureFile != nil { phases.lap("features") }
        defer {
            if phaseTimes {
                phases.lap("output")
                FileHandle.standardError.write(Data((phases.report + "\n").utf8))
            }
        }
        let report = ScoreReport(
            leep: leep, features: featureScores, featureWidth: featureFile?.width, sampleCount: labelFile.count,
            targetClasses: labelFile.targetClasses)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(summary(of: report))
        }
    }

    /// The feature metrics `--metrics` names (every one without it).
    private func selection() throws -> FeatureMetricSelection {
        guard let metrics else { return .all }
        let keys = metrics.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !keys.isEmpty else { throw ValidationError("--metrics names no metric") }
        do { return try FeatureMetricSelection(keys: keys) } catch { throw ValidationError("--metrics: \(error)") }
    }

    private func summary(of report: ScoreReport) -> String {
        var sizes = ["\(report.sampleCount) samples"]
        if let score = report.leep { sizes.append("\(score.sourceClasses) source classes") }
        sizes.append("\(report.targetClasses) target classes")
        if let width = report.featureWidth { sizes.append("\(width) features") }
        var lines = ["\(predictions ?? features ?? labels): " + sizes.joined(separator: ", ")]
        if let score = report.leep {
            lines += [
                "  LEEP               \(score.leep)",
                "  NCE                \(score.nce)",
                "  EEP accuracy       \(score.eepAccuracy.map { String(format: "%.4f", $0) } ?? "not computed")",
            ]
        }
        if let scores = report.features {
            for key in FeatureMetrics.allKeys {
                guard let value = scores.values[key] else { continue }
                let shown = value.map { "\($0)" } ?? "undefined: \(scores.unscored[key] ?? "")"
                lines.append("  " + key.padding(toLength: 22, withPad: " ", startingAt: 0) + shown)
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// What `leep score --json` prints: the LEEP family's keys (`LEEPScore`), the feature metrics'
/// (`FeatureMetricReport`), and the sizes, in one flat object.
struct ScoreReport: Encodable {
    let leep: LEEPScore?
    let features: FeatureMetricReport?
    let featureWidth: Int?
    let sampleCount: Int
    let targetClasses: Int

    enum CodingKeys: String, CodingKey {
        case featureWidth = "feature_width"
        case sampleCount = "n"
        case targetClasses = "target_classes"
    }

    func encode(to encoder: any Encoder) throws {
        try leep?.encode(to: encoder)
        try features?.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(featureWidth, forKey: .featureWidth)
        try container.encode(sampleCount, forKey: .sampleCount)
        try container.encode(targetClasses, forKey: .targetClasses)
    }
}
