@testable import leep
import Testing

/// What `leep produce` shows: a bar on a terminal, plain lines elsewhere.
@Suite struct ProgressDisplayTests {
    @Test func barOnATerminal() {
        #expect(ProgressDisplay.bar(done: 90_000, total: 200_000, unit: "rows", bytesPerUnit: 4_004, seconds: 3)
            == "[#############.................]  45%  90,000/200,000 rows  120.1 MB/s  ETA 4 s")
        #expect(ProgressDisplay.bar(done: 0, total: 10, unit: "rows", bytesPerUnit: 1, seconds: 0)
            == "[..............................]   0%  0/10 rows  -- MB/s  ETA --")
        #expect(ProgressDisplay.bar(done: 10, total: 10, unit: "rows", bytesPerUnit: 1e6, seconds: 2)
            == "[##############################] 100%  10/10 rows  5.0 MB/s  ETA 0 s")
    }

    @Test func plainLinesElsewhere() {
        #expect(ProgressDisplay.line(done: 90_000, total: 200_000, unit: "rows", bytesPerUnit: 4_004, seconds: 3)
            == "90000/200000 rows (45%), 120.1 MB/s, ETA 4 s")
        #expect(ProgressDisplay.line(done: 1, total: 1_000, unit: "rows", bytesPerUnit: 1, seconds: 1)
            == "1/1000 rows (0%), 0.0 MB/s, ETA 16 min 39 s")
    }
}
