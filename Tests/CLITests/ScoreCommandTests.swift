import Dispatch
import Foundation
import Synchronization
import TestSupport
import Testing

/// `leep score` as a user runs it: the built executable, its output and its exit status.
@Suite struct ScoreCommandTests {
    struct Outcome {
        let status: Int32
        let standardOutput: String
        let standardError: String
    }

    /// The `leep` executable beside this test bundle (or `LEEP_BIN`).
    static var executable: URL {
        if let path = ProcessInfo.processInfo.environment["LEEP_BIN"] { return URL(fileURLWithPath: path) }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("leep")
    }

    func leep(_ arguments: [String]) throws -> Outcome {
        let process = Process()
        process.executableURL = Self.executable
        process.arguments = arguments
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        // Both pipes are drained at once: a child that fills one while the other is being read
        // to its end would block forever (librdkafka can log a lot to standard error).
        let errors = Mutex(Data())
        let drained = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            let data = error.fileHandleForReading.readDataToEndOfFile()
            errors.withLock { $0 = data }
            drained.signal()
        }
        let out = output.fileHandleForReading.readDataToEndOfFile()
        drained.wait()
        let err = errors.withLock { $0 }
        process.waitUntilExit()
        return Outcome(
            status: process.terminationStatus,
            standardOutput: String(decoding: out, as: UTF8.self),
            standardError: String(decoding: err, as: UTF8.self))
    }

    static let rows: [[Double]] = [[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]]

    @Test func jsonIsOneObjectWithTheDocumentedKeys() throws {
        let fixture = try NumPyFixture()
        defer { fixture.remove() }
        let outcome = try leep([
            "score", "--predictions", fixture.predictions(rows: Self.rows), "--labels", fixture.labels([0, 0, 1, 1]),
            "--json",
        ])
        #expect(outcome.status == 0)
        let lines = outcome.standardOutput.split(separator: "\n")
        #expect(lines.count == 1)
        let object = try #require(JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["leep", "leep_lower", "leep_upper", "nce", "n", "source_classes", "target_classes"])
        let value = try #require(object["leep"] as? Double)
        #expect(abs(value - (log(67.0 / 99) + log(19.0 / 33)) / 2) < 1e-15)
        #expect(object["n"] as? Int == 4 && object["source_classes"] as? Int == 2 && object["target_classes"] as? Int == 2)

        // EEP accuracy only when asked for; LEEP and NCE are the same either way.
        let withAccuracy = try leep([
            "score", "--predictions", fixture.predictions(rows: Self.rows), "--labels", fixture.labels([0, 0, 1, 1]),
            "--json", "--eep-accuracy",
        ])
        #expect(withAccuracy.status == 0)
        let full = try #require(JSONSerialization.jsonObject(with: Data(withAccuracy.standardOutput.utf8)) as? [String: Any])
        #expect(Set(full.keys) == ["leep", "leep_lower", "leep_upper", "nce", "eep_accuracy", "n", "source_classes", "target_classes"])
        #expect(full["leep"] as? Double == value && full["nce"] as? Double == object["nce"] as? Double)
        #expect(full["eep_accuracy"] as? Double == 1)
    }

    @Test func summaryForPeople() throws {
        let fixture = try NumPyFixture()
        defer { fixture.remove() }
        let outcome = try leep([
            "score", "--predictions", fixture.predictions(rows: Self.rows), "--labels", fixture.labels([0, 0, 1, 1]),
            "--target-classes", "3", "--eep-accuracy",
        ])
        #expect(outcome.status == 0)
        #expect(outcome.standardOutput.contains("4 samples, 2 source classes, 3 target classes"))
        #expect(outcome.standardOutput.contains("LEEP"))
        #expect(outcome.standardOutput.contains("EEP accuracy       1.0000"))
    }

    @Test func badInputExitsNonZeroNamingFileRowAndProblem() throws {
        let fixture = try NumPyFixture()
        defer { fixture.remove() }
        var rows = Self.rows
        rows[2] = [3.2, -1.0]
        let predictions = try fixture.predictions(rows: rows)
        let outcome = try leep(["score", "--predictions", predictions, "--labels", fixture.labels([0, 0, 1, 1])])
        #expect(outcome.status != 0)
        #expect(outcome.standardOutput.isEmpty)
        #expect(outcome.standardError.contains("\(predictions): row 2: column 1 is -1.0, a negative probability"))
        #expect(outcome.standardError.contains("apply softmax first"))
    }

    @Test func labelAboveTargetClasses() throws {
        let fixture = try NumPyFixture()
        defer { fixture.remove() }
        let labels = try fixture.labels([0, 0, 1, 5])
        let outcome = try leep([
            "score", "--predictions", fixture.predictions(rows: Self.rows), "--labels", labels, "--target-classes", "2",
        ])
        #expect(outcome.status != 0)
        #expect(outcome.standardError.contains("\(labels): row 3: label 5 is outside [0, 2)"))
    }

    /// 8 rows of 3 features, 2 classes, not separable: every metric is defined.
    static let featureRows: [[Double]] = [
        [0.3, 1.2, -0.5], [1.1, 0.4, 0.2], [-0.7, 0.9, 1.5], [0.2, -1.3, 0.8],
        [1.9, 0.1, -0.4], [0.6, 2.2, 0.3], [-0.2, 0.5, 1.1], [1.4, -0.6, 0.9],
    ]

    @Test func metricsSelectsFeatureMetricsAndGivesTheirValuesUnchanged() throws {
        let fixture = try NumPyFixture()
        defer { fixture.remove() }
        let features = try fixture.predictions("features.npy", rows: Self.featureRows)
        let labels = try fixture.labels([0, 1, 0, 1, 0, 1, 0, 1])
        func scores(_ extra: [String]) throws -> [String: Any] {
            let outcome = try leep(["score", "--features", features, "--labels", labels, "--json"] + extra)
            #expect(outcome.status == 0, "\(outcome.standardError)")
            return try #require(JSONSerialization.jsonObject(with: Data(outcome.standardOutput.utf8)) as? [String: Any])
        }
        let every = try scores([])
        for keys in [["gbc_diagonal"], ["transrate", "logme"], ["sfda"], ["hscore_shrinkage", "sfda"]] {
            let some = try scores(["--metrics", keys.joined(separator: ",")])
            let published = Set(some.keys).subtracting(["n", "target_classes", "feature_width"])
            // A metric brings its companions (the shrinkages) and nothing else.
            let expected = Set(keys.flatMap { key in
                [key] + (key == "sfda" ? ["sfda_shrinkage"] : key == "hscore_shrinkage" ? ["ledoit_wolf_shrinkage"] : [])
            })
            #expect(published == expected, "\(keys)")
            for key in expected {
                let (alone, all) = (try #require(some[key] as? Double), try #require(every[key] as? Double))
                // SFDA alone gathers the within-class scatter itself instead of summing the
                // per-class ones: the same number up to rounding.
                #expect(abs(alone - all) <= 1e-12 * max(1, abs(all)), "\(key): \(alone) alone, \(all) with every metric")
            }
        }
        let unknown = try leep(["score", "--features", features, "--labels", labels, "--metrics", "gbc,transrate"])
        #expect(unknown.status == 64)
        #expect(unknown.standardError.contains("no feature metric is called \"gbc\""))
        #expect(unknown.standardError.contains("gbc_diagonal"))
        let withoutFeatures = try leep(["score", "--predictions", "p.npy", "--labels", labels, "--metrics", "logme"])
        #expect(withoutFeatures.status == 64)
        #expect(withoutFeatures.standardError.contains("give --features too"))
    }

    @Test func usageErrors() throws {
        let missing = try leep(["score", "--predictions", "p.npy"])
        #expect(missing.status == 64)
        #expect(missing.standardError.contains("--labels"))
        let zero = try leep(["score", "--predictions", "p.npy", "--labels", "l.npy", "--target-classes", "0"])
        #expect(zero.status == 64)
        let help = try leep(["--help"])
        #expect(help.status == 0 && help.standardOutput.contains("score"))
    }
}
