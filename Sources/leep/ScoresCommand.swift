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
    @Option(help: ArgumentHelp(
        "The score the leaderboard ranks by: \(ScoreRecord.rankableScores.joined(separator: ", ")).", valueName: "score"))
    var rankBy: ScoreBoard.Ranking = .leep
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
            // A terminal gets the leaderboard redrawn in place (at most 5 times a second); a pipe
            // gets one line per record, or JSON lines with --json.
            let terminal = !json && isatty(STDOUT_FILENO) == 1
            var changed = false
            var lastDrawn: ContinuousClock.Instant?
            let draw = { (board: ScoreBoard) in
                let clock = Date().formatted(date: .omitted, time: .standard)
                print("\u{1B}[H\u{1B}[2J" + "leep scores --follow  \(kafka.topics.scores)  \(board.summary(dataset: dataset))  \(clock)\n")
                print(board.leaderboard(dataset: dataset, rankedBy: rankBy))
                fflush(nil)
            }
            if terminal { draw(board) }
            _ = reader.read(
                into: &board, idle: nil, deadline: deadline, shutdown: shutdown, done: { _ in false },
                onRecord: { record, board in
                    guard dataset == nil || record.dataset == dataset else { return }
                    if json {
                        printLine(record)
                    } else if terminal {
                        changed = true
                        if lastDrawn.map({ ContinuousClock.now - $0 >= .milliseconds(200) }) ?? true {
                            draw(board)
                            (changed, lastDrawn) = (false, .now)
                        }
                    } else {
                        print(board.line(for: record))
                        fflush(nil)
                    }
                },
                onQuiet: { board in
                    guard terminal, changed else { return }
                    draw(board)
                    (changed, lastDrawn) = (false, .now)
                })
            return
        }
        let reached = reader.read(
            into: &board, idle: waitCount == nil ? .seconds(2) : nil, deadline: deadline, shutdown: shutdown,
            done: { board in waitCount.map { board.finalCount(dataset: dataset) >= $0 } ?? false })
        if json {
            board.judgedRecords(dataset: dataset).forEach(printLine)
        } else {
            print(board.leaderboard(dataset: dataset, rankedBy: rankBy))
        }
        if !reached, let waitCount {
            FileHandle.standardError.write(Data(
                "error: only \(board.finalCount(dataset: dataset)) of \(waitCount) runs are final after \(timeout ?? 0) s\n".utf8))
            throw ExitCode.failure
        }
    }
}

extension ScoreBoard.Ranking: ExpressibleByArgument {
    public init?(argument: String) { self.init(key: argument) }
    public static var allValueStrings: [String] { ScoreRecord.rankableScores }
}
