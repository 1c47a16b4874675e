import ArgumentParser
import Foundation
import Pipeline
import WireFormat

/// `leep scores`: reads the score topic — every record since the beginning — and prints it.
struct ScoresCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scores",
        abstract: "Print the scores on the score topic: a leaderboard per data set, or JSON lines.")

    @Flag(help: "Keep reading and print records as they arrive.") var follow = false
    @Flag(help: "One JSON object per line (the latest record of each run).") var json = false
    @Option(help: "Only this data set.") var dataset: String?
    @Option(help: "Return once this many runs are final.") var waitCount: Int?
    @Option(help: "With --wait-count: give up (exit 1) after this many seconds.") var timeout: Double?
    @OptionGroup var kafka: KafkaOptions

    func run() throws {
        let reader = try ScoreReader(configuration: try kafka.configuration(), topics: kafka.topics)
        var board = ScoreBoard()
        let deadline = timeout.map { ContinuousClock.now.advanced(by: .milliseconds(Int($0 * 1000))) }
        let shutdown = ShutdownSignal.onTerminationSignals()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let printLine: (ScoreRecord) -> Void = { record in
            guard dataset == nil || record.dataset == dataset else { return }
            if let data = try? encoder.encode(record) { print(String(decoding: data, as: UTF8.self)) }
            fflush(nil)  // all streams: followers read line by line
        }
        if follow {
            _ = reader.read(into: &board, idle: nil, deadline: deadline, shutdown: shutdown, done: { _ in false }) { record, board in
                if json { printLine(record) } else { print(board.leaderboard(dataset: dataset)) }
            }
            return
        }
        let reached = reader.read(
            into: &board, idle: waitCount == nil ? .seconds(2) : nil, deadline: deadline, shutdown: shutdown,
            done: { board in waitCount.map { board.records(dataset: dataset).filter { $0.status == .final }.count >= $0 } ?? false })
        if json {
            board.records(dataset: dataset).forEach(printLine)
        } else {
            print(board.leaderboard(dataset: dataset))
        }
        if !reached, let waitCount {
            FileHandle.standardError.write(Data(
                "error: only \(board.records(dataset: dataset).filter { $0.status == .final }.count) of \(waitCount) runs are final after \(timeout ?? 0) s\n".utf8))
            throw ExitCode.failure
        }
    }
}
