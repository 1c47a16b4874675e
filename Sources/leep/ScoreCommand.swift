import ArgumentParser
import Foundation
import LEEPCore
import PredictionFiles

/// `leep score`: scores one predictions/labels pair of NumPy files on this machine.
struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Compute LEEP, NCE and EEP accuracy of one model on one data set from .npy files.",
        discussion: """
            PREDICTIONS is an n×Z array of softmax outputs (float16, float32 or float64, C order); \
            LABELS holds the n target labels (any integer type). Both are memory-mapped and read \
            twice; memory beyond the mapping is O(Y×Z). Rows must be finite, non-negative and sum \
            to 1 within --sum-tolerance: pass probabilities, not logits.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Softmax outputs, an n×Z .npy file.", valueName: "path"))
    var predictions: String

    @Option(name: .long, help: ArgumentHelp("Target labels, a length-n .npy file of integers.", valueName: "path"))
    var labels: String

    @Option(name: .long, help: ArgumentHelp("Y, the number of target classes (default: max label + 1).", valueName: "Y"))
    var targetClasses: Int?

    @Option(name: .long, help: "Largest accepted |row sum − 1|.")
    var sumTolerance: Double = RowCheck.defaultSumTolerance

    @Option(name: .long, help: "Threads (default: one per core). Each scores a slice of the rows; the slices merge exactly.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Flag(
        name: .long, inversion: .prefixedNo,
        help: "Also compute EEP accuracy: Y dot products a sample in pass 2 instead of the one LEEP needs.")
    var eepAccuracy = false

    @Flag(name: .long, help: "Print one JSON object: leep, nce, eep_accuracy, n, source_classes, target_classes.")
    var json = false

    func validate() throws {
        if let targetClasses, targetClasses < 1 {
            throw ValidationError("--target-classes must be at least 1, got \(targetClasses)")
        }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard sumTolerance >= 0 && sumTolerance.isFinite else {
            throw ValidationError("--sum-tolerance must be a finite number ≥ 0, got \(sumTolerance)")
        }
    }

    func run() throws {
        let pair = try PredictionPair(predictionsPath: predictions, labelsPath: labels, targetClasses: targetClasses)
        let score = try FileScorer.score(pair, check: RowCheck(sumTolerance: sumTolerance), threads: threads, accuracy: eepAccuracy)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(score), as: UTF8.self))
        } else {
            print(summary(of: score))
        }
    }

    private func summary(of score: LEEPScore) -> String {
        """
        \(predictions): \(score.sampleCount) samples, \(score.sourceClasses) source classes, \
        \(score.targetClasses) target classes
          LEEP          \(score.leep)
          NCE           \(score.nce)
          EEP accuracy  \(score.eepAccuracy.map { String(format: "%.4f", $0) } ?? "not computed")
        """
    }
}
