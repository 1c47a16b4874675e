import Foundation
import LEEPCore
import PredictionFiles
import TestSupport
import Testing

/// The files a model is scored from: softmax outputs, features or both with the labels. A model
/// without a classifier head gives features alone; its files are checked with the same rules
/// and messages as the others, every error naming the file, the row where there is one, and the
/// problem.
@Suite struct ScoringFilesTests {
    static let theta: [[Double]] = [[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]]
    static let features: [[Double]] = [[1.5, -2, 0], [0.5, 0.25, 8], [-1, 2, 4], [3, 3, -0.5]]
    static let labels: [Int64] = [0, 0, 1, 1]

    /// Runs `body` with a fresh fixture directory.
    func withFixture(_ body: (NumPyFixture) throws -> Void) throws {
        let fixture = try NumPyFixture()
        defer { fixture.remove() }
        try body(fixture)
    }

    /// The `FileError` that opening, then checking every row of, the files throws.
    func failure(
        labels: String, predictions: String? = nil, features: String? = nil, targetClasses: Int? = nil
    ) -> FileError? {
        do {
            let files = try ScoringFiles(
                labels: LabelFile(path: labels, targetClasses: targetClasses), predictionsPath: predictions, featuresPath: features)
            try files.checkRows(RowCheck())
            Issue.record("expected the files to be refused")
            return nil
        } catch let error as FileError {
            return error
        } catch {
            Issue.record("expected a FileError, got \(error)")
            return nil
        }
    }

    @Test func featuresAloneDescribeARunWithoutSoftmaxOutputs() throws {
        try withFixture { fixture in
            let files = try ScoringFiles(
                labels: LabelFile(path: fixture.labels(Self.labels)), predictionsPath: nil,
                featuresPath: fixture.predictions("features.npy", rows: Self.features))
            #expect(files.predictions == nil && files.features != nil)
            #expect(files.sampleCount == 4 && files.targetClasses == 2)
            #expect(files.sourceClasses == 0 && files.featureWidth == 3 && files.rowBytes == 3 * 8)
            try files.checkRows(RowCheck())
        }
    }

    @Test func bothOrEitherDescribeTheirRows() throws {
        try withFixture { fixture in
            let labels = try LabelFile(path: fixture.labels(Self.labels), targetClasses: 5)
            let theta = try fixture.predictions32(rows: Self.theta.map { $0.map(Float.init) })
            let features = try fixture.predictions("features.npy", rows: Self.features)
            let both = try ScoringFiles(labels: labels, predictionsPath: theta, featuresPath: features)
            #expect(both.sourceClasses == 2 && both.featureWidth == 3 && both.rowBytes == 2 * 4 + 3 * 8 && both.targetClasses == 5)
            try both.checkRows(RowCheck())
            let softmax = try ScoringFiles(labels: labels, predictionsPath: theta, featuresPath: nil)
            #expect(softmax.features == nil && softmax.featureWidth == 0 && softmax.rowBytes == 2 * 4)
        }
    }

    @Test func aNonFiniteFeatureIsNamedByFileRowAndColumn() throws {
        try withFixture { fixture in
            var rows = Self.features
            rows[2][1] = .nan
            let features = try fixture.predictions("features.npy", rows: rows)
            let error = failure(labels: try fixture.labels(Self.labels), features: features)
            #expect(error?.description == "\(features): row 2: feature 1 is nan; features must be finite")
        }
    }

    @Test func labelsAreCheckedWithoutSoftmaxOutputsToo() throws {
        try withFixture { fixture in
            let labels = try fixture.labels([0, 0, 1, 5])
            let error = failure(labels: labels, features: try fixture.predictions("features.npy", rows: Self.features), targetClasses: 2)
            #expect(error?.description == "\(labels): row 3: label 5 is outside [0, 2)")
            let negative = try fixture.labels([0, -1, 1, 1], name: "negative.npy")
            #expect(failure(labels: negative, features: try fixture.predictions("features.npy", rows: Self.features))?.path == negative)
        }
    }

    @Test func featureFilesOfTheWrongShapeAreNamed() throws {
        try withFixture { fixture in
            let labels = try fixture.labels(Self.labels)
            let short = try fixture.predictions("short.npy", rows: Array(Self.features.prefix(3)))
            #expect(failure(labels: labels, features: short)?.description == "\(short): has 3 rows but \(labels) has 4; each file must have one row per sample")
            let flat = try fixture.write("flat.npy", NumPyFixture.npy(descr: "<f8", shape: [4], payload: NumPyFixture.bytes(of: [1.0, 2, 3, 4])))
            #expect(failure(labels: labels, features: flat)?.description == "\(flat): expected a 2-D array, got shape (4,)")
            let empty = try fixture.write("empty.npy", NumPyFixture.npy(descr: "<f8", shape: [4, 0], payload: Data()))
            #expect(failure(labels: labels, features: empty)?.description == "\(empty): has zero features per row")
            let integers = try fixture.write("integers.npy", NumPyFixture.npy(descr: "<i8", shape: [4, 1], payload: NumPyFixture.bytes(of: Self.labels)))
            #expect(failure(labels: labels, features: integers)?.problem
                == .unsupportedDType(descr: "<i8", expected: "float16, float32 or float64 features"))
        }
    }

    /// With both, the softmax outputs' rows are checked first, as `leep score` reads them.
    @Test func softmaxOutputsAreCheckedBeforeFeatures() throws {
        try withFixture { fixture in
            var theta = Self.theta
            theta[3] = [0.5, 0.6]
            var features = Self.features
            features[0][0] = .infinity
            let predictions = try fixture.predictions(rows: theta)
            let error = failure(
                labels: try fixture.labels(Self.labels), predictions: predictions,
                features: try fixture.predictions("features.npy", rows: features))
            #expect(error?.path == predictions && error?.description.contains("row 3: the row sums to") == true)
        }
    }
}
