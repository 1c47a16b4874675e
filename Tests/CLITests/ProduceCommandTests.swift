import Foundation
import TestSupport
import Testing

/// `leep produce` as a user runs it, without a broker: what it accepts, and the files it refuses
/// before it asks for one. Publishing itself is tested against a broker (Tests/integration).
@Suite struct ProduceCommandTests {
    let command = ScoreCommandTests()

    /// Arguments that point at no broker, and give up on it after a second.
    static let noBroker = ["--brokers", "127.0.0.1:1", "--broker-wait", "1"]

    static let features: [[Double]] = [[1.5, -2, 0], [0.5, 0.25, 8], [-1, 2, 4], [3, 3, -0.5]]

    /// A model without a classifier head gives features alone: accepted, so the command goes
    /// on to ask for a broker (here none answers).
    @Test func featuresAloneNeedNoPredictions() throws {
        let fixture = try NumPyFixture()
        defer { fixture.remove() }
        let outcome = try command.leep([
            "produce", "--model", "dinov2", "--dataset", "pets", "--labels", fixture.labels([0, 0, 1, 1]),
            "--features", fixture.predictions("features.npy", rows: Self.features),
        ] + Self.noBroker)
        #expect(outcome.status == 1)
        #expect(!outcome.standardError.contains("--predictions"), "\(outcome.standardError)")
        #expect(outcome.standardError.contains("no Kafka broker answered at 127.0.0.1:1"), "\(outcome.standardError)")
    }

    @Test func neitherPredictionsNorFeaturesIsAUsageError() throws {
        let outcome = try command.leep(["produce", "--model", "m", "--dataset", "d", "--labels", "l.npy"] + Self.noBroker)
        #expect(outcome.status == 64)
        #expect(outcome.standardError.contains("give --predictions, --features or both"), "\(outcome.standardError)")
    }

    @Test func eepAccuracyNeedsSoftmaxOutputs() throws {
        let outcome = try command.leep([
            "produce", "--model", "m", "--dataset", "d", "--labels", "l.npy", "--features", "f.npy", "--eep-accuracy",
        ] + Self.noBroker)
        #expect(outcome.status == 64)
        #expect(outcome.standardError.contains("--eep-accuracy needs --predictions"), "\(outcome.standardError)")
    }

    /// Features whose statistics no worker may hold are refused, naming the file, before any
    /// broker is asked: at D = 4,096 the class variances of 16,383 classes pass 2^27 values.
    @Test func featureShapesBeyondWhatAWorkerHoldsAreRefusedFirst() throws {
        let fixture = try NumPyFixture()
        defer { fixture.remove() }
        let labels = try fixture.labels([0, 0, 1, 1])
        let wide = try fixture.predictions("wide.npy", rows: (0..<4).map { row in (0..<4096).map { Double(($0 + row) % 7) } })
        func produce(_ classes: Int) throws -> ScoreCommandTests.Outcome {
            try command.leep([
                "produce", "--model", "m", "--dataset", "d", "--labels", labels, "--features", wide,
                "--target-classes", "\(classes)",
            ] + Self.noBroker)
        }
        let refused = try produce(16_383)
        #expect(refused.status == 1)
        #expect(refused.standardError.contains(
            "\(wide): 4096 features and 16383 target classes make 134225919 statistics per run, beyond the limit of 134217728"),
            "\(refused.standardError)")
        #expect(!refused.standardError.contains("broker"), "\(refused.standardError)")
        let accepted = try produce(16_382)
        #expect(accepted.standardError.contains("no Kafka broker answered"), "\(accepted.standardError)")
    }

    /// A features file that does not fit its labels is named before any broker is asked.
    @Test func featureFilesOfTheWrongShapeAreNamedFirst() throws {
        let fixture = try NumPyFixture()
        defer { fixture.remove() }
        let labels = try fixture.labels([0, 0, 1, 1])
        let short = try fixture.predictions("short.npy", rows: Array(Self.features.prefix(3)))
        let outcome = try command.leep(["produce", "--model", "m", "--dataset", "d", "--labels", labels, "--features", short] + Self.noBroker)
        #expect(outcome.status == 1)
        #expect(outcome.standardError.contains("\(short): has 3 rows but \(labels) has 4"), "\(outcome.standardError)")
        #expect(!outcome.standardError.contains("broker"), "\(outcome.standardError)")
        let outOfRange = try fixture.labels([0, 0, 1, 7], name: "wide.npy")
        let refused = try command.leep([
            "produce", "--model", "m", "--dataset", "d", "--labels", outOfRange, "--target-classes", "2",
            "--features", fixture.predictions("features.npy", rows: Self.features),
        ] + Self.noBroker)
        #expect(refused.status == 1)
        #expect(refused.standardError.contains("\(outOfRange): row 3: label 7 is outside [0, 2)"), "\(refused.standardError)")
    }
}
