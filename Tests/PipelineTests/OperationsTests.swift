import Foundation
@testable import Pipeline
import Testing
import WireFormat

/// The pure parts of operating a role: the health rule and the follower's lines.
@Suite struct OperationsTests {
    @Test func healthIsLostWhenTheLoopStallsOrStops() async throws {
        let health = RoleHealth(role: "worker", staleAfterSeconds: 0.05)
        health.round()
        #expect(health.isHealthy)
        try await Task.sleep(for: .milliseconds(120))
        #expect(!health.isHealthy, "no round for longer than the limit")
        health.round()
        #expect(health.isHealthy)
        health.stop()
        #expect(!health.isHealthy, "a stopped loop is not healthy")
    }

    static func apply(_ board: inout ScoreBoard, _ json: String) {
        Array(json.utf8).withUnsafeBytes { _ = board.apply($0) }
    }

    @Test func followerLinesAndSummary() {
        var board = ScoreBoard()
        Self.apply(&board, #"{"model":"m","dataset":"d","run":"r1","status":"progress","pass":1,"chunks_accepted":3,"chunks_expected":8}"#)
        Self.apply(&board, #"{"model":"m2","dataset":"d","run":"r2","status":"progress","pass":2,"chunks_accepted":8,"chunks_expected":8,"tasks_done":1,"tasks_expected":4}"#)
        #expect(board.summary() == "2 runs: 2 running")
        #expect(board.line(for: board.latest["r1"]!) == "progress m on d: pass 1: 3/8 chunks  (r1)")
        #expect(board.line(for: board.latest["r2"]!) == "progress m2 on d: pass 2: 8/8 chunks, 1/4 tasks  (r2)")
        Self.apply(&board, #"{"model":"m","dataset":"d","run":"r1","status":"final","leep":-0.5,"nce":-0.25,"n":10,"source_classes":4,"target_classes":2}"#)
        #expect(board.summary() == "2 runs: 1 final, 1 running")
        #expect(board.finalCount() == 1 && board.finalCount(dataset: "d") == 1 && board.finalCount(dataset: "e") == 0)
        Self.apply(&board, #"{"model":"m","dataset":"d","run":"r1","status":"progress","pass":2}"#)
        #expect(board.finalCount() == 1, "a late record of a final run changes nothing")
        Self.apply(&board, #"{"model":"m3","dataset":"e","run":"r3","status":"failed","reason":"bad row"}"#)
        #expect(board.summary(dataset: "e") == "1 runs: 1 failed", "the header counts the data set shown")
        #expect(board.line(for: board.latest["r1"]!) == "final m on d: LEEP -0.5000  NCE -0.2500  n 10  (r1)")
        #expect(board.leaderboard().contains("pass 2: 8/8 chunks, 1/4 tasks"))
    }

    /// Verdicts count certified bounds only: a final LEEP, or the bracket once pass 1 is merged;
    /// never a streaming bracket, which is of the rows seen so far.
    @Test func aModelBelowAnotherModelsCertifiedLowerBoundCannotWin() {
        var board = ScoreBoard()
        Self.apply(&board, #"{"model":"best","dataset":"d","run":"r1","status":"final","leep":-0.2,"leep_lower":-0.5,"leep_upper":-0.1,"nce":-0.1,"n":10,"source_classes":4,"target_classes":2}"#)
        Self.apply(&board, #"{"model":"close","dataset":"d","run":"r2","status":"bracketed","leep_lower":-0.6,"leep_upper":-0.15,"n":10,"source_classes":4,"target_classes":2}"#)
        Self.apply(&board, #"{"model":"behind","dataset":"d","run":"r3","status":"bracketed","leep_lower":-1.4,"leep_upper":-0.7,"n":10,"source_classes":4,"target_classes":2}"#)
        Self.apply(&board, #"{"model":"streaming","dataset":"d","run":"r4","status":"streaming","pass":1,"rows_seen":5,"leep_lower":-3,"leep_upper":-2,"source_classes":4}"#)
        Self.apply(&board, #"{"model":"elsewhere","dataset":"e","run":"r5","status":"final","leep":-3,"leep_lower":-3,"leep_upper":-3,"nce":-1,"n":10,"source_classes":4,"target_classes":2}"#)
        #expect(board.verdicts(dataset: "d") == ["r3": "best"])
        #expect(board.verdicts(dataset: "e").isEmpty, "alone on its data set")
        #expect(board.judgedRecords().first { $0.run == "r3" }?.dominatedBy == "best")
        let table = board.leaderboard(dataset: "d")
        #expect(table.contains("pass 1 merged: LEEP in [-1.4000, -0.7000]  r3  (cannot win: below best)"))
        #expect(table.contains("pass 1: 5 rows, 0/? chunks"))
    }
}
