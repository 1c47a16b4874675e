import Foundation
import LEEPCore
import TestSupport
import PredictionFiles
import Testing

/// Every kind of bad input file gets an error naming the file, the row where there is one, and
/// the problem; good files of every supported dtype score alike.
@Suite struct PredictionPairTests {
    static let rows: [[Double]] = [[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]]
    static let labels: [Int64] = [0, 0, 1, 1]

    /// Runs `body` with a fresh fixture directory.
    func withFixture(_ body: (NumPyFixture) throws -> Void) throws {
        let fixture = try NumPyFixture()
        defer { fixture.remove() }
        try body(fixture)
    }

    /// The error of scoring the pair, which must be a `FileError`.
    func failure(_ predictions: String, _ labels: String, targetClasses: Int? = nil) -> FileError? {
        do {
            let pair = try PredictionPair(predictionsPath: predictions, labelsPath: labels, targetClasses: targetClasses)
            _ = try FileScorer.score(pair)
            Issue.record("expected \(predictions) / \(labels) to be refused")
            return nil
        } catch let error as FileError {
            return error
        } catch {
            Issue.record("expected a FileError, got \(error)")
            return nil
        }
    }

    @Test func goodFilesScoreLikeTheCore() throws {
        try withFixture { fixture in
            let pair = try PredictionPair(
                predictionsPath: fixture.predictions(rows: Self.rows), labelsPath: fixture.labels(Self.labels))
            let score = try FileScorer.score(pair)
            #expect(abs(score.leep - (log(67.0 / 99) + log(19.0 / 33)) / 2) < 1e-15)
            #expect(score.targetClasses == 2 && score.sourceClasses == 2 && score.sampleCount == 4)
        }
    }

    @Test(arguments: ["<i1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8"])
    func everyIntegerLabelWidth(descr: String) throws {
        try withFixture { fixture in
            let values = Self.labels
            let payload: Data = switch descr.dropFirst() {
            case "i1": NumPyFixture.bytes(of: values.map(Int8.init))
            case "i2": NumPyFixture.bytes(of: values.map(Int16.init))
            case "i4": NumPyFixture.bytes(of: values.map(Int32.init))
            case "i8": NumPyFixture.bytes(of: values)
            case "u1": NumPyFixture.bytes(of: values.map(UInt8.init))
            case "u2": NumPyFixture.bytes(of: values.map(UInt16.init))
            case "u4": NumPyFixture.bytes(of: values.map(UInt32.init))
            default: NumPyFixture.bytes(of: values.map(UInt64.init))
            }
            let labels = try fixture.write("labels.npy", NumPyFixture.npy(descr: descr, shape: [4], payload: payload))
            let pair = try PredictionPair(predictionsPath: fixture.predictions(rows: Self.rows), labelsPath: labels)
            #expect(try FileScorer.score(pair).eepAccuracy == 1)
        }
    }

    @Test func float16And32AreWidenedExactly() throws {
        try withFixture { fixture in
            // Values exactly representable in float16, so all three files hold the same numbers.
            let rows: [[Double]] = [[0.75, 0.25], [0.5, 0.5], [0.125, 0.875], [0.25, 0.75]]
            let labels = try fixture.labels(Self.labels)
            let f64 = try FileScorer.score(PredictionPair(predictionsPath: fixture.predictions(rows: rows), labelsPath: labels))
            let f32 = try FileScorer.score(PredictionPair(
                predictionsPath: fixture.predictions32(rows: rows.map { $0.map(Float.init) }), labelsPath: labels))
            let f16Path = try fixture.write("p16.npy", NumPyFixture.npy(
                descr: "<f2", shape: [4, 2], payload: NumPyFixture.bytes(of: rows.flatMap { $0 }.map(Float16.init))))
            let f16 = try FileScorer.score(PredictionPair(predictionsPath: f16Path, labelsPath: labels))
            #expect(f64 == f32 && f32 == f16)
        }
    }

    @Test func notANumPyFile() throws {
        try withFixture { fixture in
            let text = try fixture.write("predictions.csv", Data("0.5,0.5\n0.5,0.5\n".utf8))
            let error = failure(text, try fixture.labels(Self.labels))
            #expect(error?.path == text)
            #expect(error?.description.contains("not a NumPy .npy file") == true)
            let empty = try fixture.write("empty.npy", Data())
            #expect(failure(empty, try fixture.labels(Self.labels))?.description.contains("not a NumPy .npy file") == true)
            let missing = fixture.directory.appendingPathComponent("missing.npy").path
            #expect(failure(missing, try fixture.labels(Self.labels))?.description.contains("cannot open") == true)
            #expect(failure(fixture.directory.path, try fixture.labels(Self.labels))?.description
                .contains("cannot open: it is a directory, not a .npy file") == true)
        }
    }

    @Test func truncatedData() throws {
        try withFixture { fixture in
            let whole = NumPyFixture.npy(descr: "<f8", shape: [4, 2], payload: NumPyFixture.bytes(of: Self.rows.flatMap { $0 }))
            let path = try fixture.write("truncated.npy", whole.dropLast(12))
            let error = failure(path, try fixture.labels(Self.labels))
            #expect(error?.problem == .truncated(expectedBytes: 64, availableBytes: 52))
            #expect(error?.description.hasPrefix(path + ": truncated") == true)
            let header = try fixture.write("header.npy", whole.prefix(40))
            #expect(failure(header, try fixture.labels(Self.labels))?.description.contains("truncated") == true)
        }
    }

    @Test func unsupportedDTypes() throws {
        try withFixture { fixture in
            let labels = try fixture.labels(Self.labels)
            for descr in ["<c16", ">f8", "<i8", "|b1", "<U8"] {
                let path = try fixture.write("bad.npy", NumPyFixture.npy(descr: descr, shape: [4, 2], payload: Data(count: 128)))
                #expect(failure(path, labels)?.problem == .unsupportedDType(
                    descr: descr, expected: "float16, float32 or float64 probabilities"))
            }
            let floatLabels = try fixture.write("float-labels.npy", NumPyFixture.npy(
                descr: "<f8", shape: [4], payload: NumPyFixture.bytes(of: [0.0, 0, 1, 1])))
            let error = failure(try fixture.predictions(rows: Self.rows), floatLabels)
            #expect(error?.path == floatLabels)
            #expect(error?.description.contains("unsupported dtype '<f8'; expected integer labels") == true)
        }
    }

    @Test func fortranOrder() throws {
        try withFixture { fixture in
            let path = try fixture.write("fortran.npy", NumPyFixture.npy(
                descr: "<f8", shape: [4, 2], fortranOrder: true, payload: NumPyFixture.bytes(of: Self.rows.flatMap { $0 })))
            #expect(failure(path, try fixture.labels(Self.labels))?.problem == .fortranOrder)
        }
    }

    @Test func wrongNumberOfDimensions() throws {
        try withFixture { fixture in
            let flat = try fixture.write("flat.npy", NumPyFixture.npy(
                descr: "<f8", shape: [8], payload: NumPyFixture.bytes(of: Self.rows.flatMap { $0 })))
            #expect(failure(flat, try fixture.labels(Self.labels))?.problem == .wrongDimensions(shape: [8], expected: 2))
            let column = try fixture.write("column.npy", NumPyFixture.npy(
                descr: "<i8", shape: [4, 1], payload: NumPyFixture.bytes(of: Self.labels)))
            let error = failure(try fixture.predictions(rows: Self.rows), column)
            #expect(error?.path == column && error?.problem == .wrongDimensions(shape: [4, 1], expected: 1))
        }
    }

    @Test func lengthsDiffer() throws {
        try withFixture { fixture in
            let predictions = try fixture.predictions(rows: Self.rows)
            let labels = try fixture.labels([0, 1, 1])
            #expect(failure(predictions, labels)?.problem == .lengthMismatch(rows: 4, otherFile: labels, otherRows: 3))
        }
    }

    @Test func zeroRows() throws {
        try withFixture { fixture in
            let predictions = try fixture.write("none.npy", NumPyFixture.npy(descr: "<f8", shape: [0, 5], payload: Data()))
            #expect(failure(predictions, try fixture.labels([]))?.problem == .noRows)
        }
    }

    @Test func nanAndInfinity() throws {
        try withFixture { fixture in
            let labels = try fixture.labels(Self.labels)
            var rows = Self.rows
            rows[2] = [.infinity, 0.5]
            let error = failure(try fixture.predictions(rows: rows), labels)
            #expect(error?.problem == .invalidRow(InvalidRow(row: 2, problem: .notFinite(column: 0, value: .infinity))))
            rows[2] = [0.5, .nan]
            #expect(failure(try fixture.predictions(rows: rows), labels)?.description.contains("row 2: column 1 is nan") == true)
        }
    }

    @Test func negativeEntries() throws {
        try withFixture { fixture in
            var rows = Self.rows
            rows[3] = [-0.25, 1.25]
            let path = try fixture.predictions(rows: rows)
            let error = failure(path, try fixture.labels(Self.labels))
            #expect(error?.path == path)
            #expect(error?.problem == .invalidRow(InvalidRow(row: 3, problem: .negative(column: 0, value: -0.25))))
            #expect(error?.description.contains("apply softmax first") == true)
        }
    }

    @Test func rowsOffOneAndLogits() throws {
        try withFixture { fixture in
            var rows = Self.rows
            rows[1] = [0.6, 0.41]
            let error = failure(try fixture.predictions(rows: rows), try fixture.labels(Self.labels))
            #expect(error?.problem == .invalidRow(InvalidRow(row: 1, problem: .notNormalised(sum: 1.01, tolerance: 1e-3))))
            rows = [[2.0, 5.5], [1.0, 3.0], [0.5, 4.0], [3.0, 1.0]]
            let logits = failure(try fixture.predictions(rows: rows), try fixture.labels(Self.labels))
            #expect(logits?.description.contains("row 0: the row sums to 7.5, not 1 (tolerance 0.001)") == true)
            #expect(logits?.description.contains("apply softmax first") == true)
        }
    }

    @Test func labelsOutOfRange() throws {
        try withFixture { fixture in
            let predictions = try fixture.predictions(rows: Self.rows)
            let negative = try fixture.labels([0, 1, -3, 1])
            let error = failure(predictions, negative)
            #expect(error?.path == negative)
            #expect(error?.description == "\(negative): row 2: label -3 is negative; labels are class indices 0, 1, …")
            let high = try fixture.labels([0, 1, 2, 1])
            let tooHigh = failure(predictions, high, targetClasses: 2)
            #expect(tooHigh?.path == high)
            #expect(tooHigh?.description == "\(high): row 2: label 2 is outside [0, 2)")
        }
    }
}
