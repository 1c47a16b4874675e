import LEEPCore
import Testing

/// Each kind of invalid row is refused with its row and problem, and leaves the sums untouched.
@Suite struct ValidationTests {
    func add(_ theta: [Double], labels: [Int32], targetClasses: Int = 2, firstRow: Int = 0)
        -> (JointAccumulator, AddError?)
    {
        var joint = JointAccumulator(targetClasses: targetClasses, sourceClasses: theta.count / labels.count)
        let untouched = joint
        var failure: AddError?
        theta.withUnsafeBufferPointer { theta in
            labels.withUnsafeBufferPointer { labels in
                do throws(AddError) {
                    try joint.add(PredictionChunk(
                        probabilities: theta, labels: labels, sourceClasses: theta.count / labels.count,
                        firstRow: firstRow))
                } catch {
                    failure = error
                }
            }
        }
        if failure != nil { #expect(joint == untouched, "a refused chunk must not change the sums") }
        return (joint, failure)
    }

    @Test func nanAndInfinityAreNamedByColumn() {
        let (_, nan) = add([0.5, 0.5, 0.2, .nan], labels: [0, 1], firstRow: 10)
        // NaN ≠ NaN, so match the case rather than compare errors.
        guard case .row(let invalid) = nan, case .notFinite(let column, let value) = invalid.problem else {
            Issue.record("expected a non-finite value, got \(String(describing: nan))")
            return
        }
        #expect(invalid.row == 11 && column == 1 && value.isNaN)
        #expect(nan?.description == "row 11: column 1 is nan; probabilities must be finite")
        let (_, infinity) = add([0.5, 0.5, .infinity, 0], labels: [0, 1])
        #expect(infinity == .row(InvalidRow(row: 1, problem: .notFinite(column: 0, value: .infinity))))
    }

    @Test func negativeEntriesPointAtLogits() {
        let (_, error) = add([2.5, -1.5], labels: [0])
        #expect(error == .row(InvalidRow(row: 0, problem: .negative(column: 1, value: -1.5))))
        #expect(error?.description.contains("apply softmax first") == true)
    }

    @Test func rowsThatDoNotSumToOne() {
        let (_, logits) = add([0.5, 0.5, 3.0, 4.0], labels: [0, 1])
        #expect(logits == .row(InvalidRow(row: 1, problem: .notNormalised(sum: 7, tolerance: 1e-3))))
        #expect(logits?.description.contains("apply softmax first") == true)
        let (_, slightly) = add([0.5, 0.502], labels: [0])
        #expect(slightly?.description.contains("sums to") == true)
        #expect(slightly?.description.contains("softmax") == false)
        // Within the tolerance: accepted as given, not renormalised.
        let (joint, none) = add([0.5, 0.5005], labels: [0])
        #expect(none == nil && joint.jointSums == [0.5, 0.5005, 0, 0])
    }

    @Test func labelsOutsideTheTargetClasses() {
        let (_, high) = add([0.5, 0.5], labels: [2])
        #expect(high == .row(InvalidRow(row: 0, problem: .labelOutOfRange(label: 2, targetClasses: 2))))
        let (_, negative) = add([0.5, 0.5, 0.5, 0.5], labels: [0, -1])
        #expect(negative == .row(InvalidRow(row: 1, problem: .labelOutOfRange(label: -1, targetClasses: 2))))
    }

    @Test func shapesMustAgree() throws {
        var joint = JointAccumulator(targetClasses: 2, sourceClasses: 3)
        #expect(throws: ShapeMismatch.self) { try joint.merge(JointAccumulator(targetClasses: 2, sourceClasses: 4)) }
        let theta: [Double] = [0.5, 0.5]
        let labels: [Int32] = [0]
        let refused: Bool = theta.withUnsafeBufferPointer { theta in
            labels.withUnsafeBufferPointer { labels in
                do throws(AddError) {
                    try joint.add(PredictionChunk(probabilities: theta, labels: labels, sourceClasses: 2))
                    return false
                } catch {
                    return error == .shape(ShapeMismatch(expected: (2, 3), actual: (2, 2)))
                }
            }
        }
        #expect(refused)
    }
}
