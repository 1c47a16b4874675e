import Foundation
import LEEPCore
import Testing

@testable import Pipeline

/// The pool that runs the runs' decompositions off the aggregator's loop: every computation
/// queued comes back once, with its run and partition, whatever the width.
@Suite struct ComputationPoolTests {
    @Test(arguments: [1, 3])
    func everyComputationComesBackOnceWithItsRun(width: Int) throws {
        let pool = ComputationPool(width: width)
        let data = FeaturePipelineTests.Data(seed: 2)
        let statistics = try data.directSet()
        let expected = FeatureMetricReport(statistics: statistics)
        for index in 0..<8 {
            pool.start(
                RunComputation(kind: .featureMetrics, input: .featureMetrics(statistics)), run: "run-\(index)", partition: Int32(index % 2))
        }
        var finished: [ComputationPool.Finished] = []
        let deadline = ContinuousClock.now + .seconds(60)
        while finished.count < 8, ContinuousClock.now < deadline {
            finished += pool.collect()
            if finished.count < 8 { Thread.sleep(forTimeInterval: 0.001) }
        }
        #expect(finished.map(\.run).sorted() == (0..<8).map { "run-\($0)" }.sorted())
        for done in finished {
            #expect(done.partition == Int32(Int(done.run.dropFirst(4))! % 2) && done.kind == .featureMetrics)
            guard case .featureMetrics(let report) = done.value else {
                Issue.record("not a report")
                continue
            }
            #expect(report == expected, "the same value on every thread")
        }
        #expect(pool.inFlight == 0 && pool.collect().isEmpty)
    }
}
