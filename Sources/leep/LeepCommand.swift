import ArgumentParser
import Kafka
import LEEPCore

/// `leep`: transferability scores (LEEP, NCE, EEP accuracy) of pretrained models on target data.
@main
struct LeepCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leep",
        abstract: "Score pretrained models for transfer learning with LEEP (Nguyen et al., ICML 2020).",
        discussion: """
            Each source model's softmax outputs on the target data, with the target labels, give \
            one LEEP score per (model, data set): higher predicts better accuracy after fine-tuning.
            """,
        version: LeepCommand.version,
        subcommands: [
            ScoreCommand.self, ProduceCommand.self, WorkerCommand.self, AggregateCommand.self, ScoresCommand.self,
            TopicsCommand.self,
        ]
    )

    static let version = "0.1.0"

    /// `leep --version` also names what the binary loaded at run time — the librdkafka (too old a
    /// one cannot talk to the local broker) and the BLAS with the kernels it runs (which decide
    /// how fast pass 2 and the feature statistics are). ArgumentParser's version is a fixed
    /// string read on every parse, which would load BLAS for every command; so it is answered
    /// here, and everything else goes to ArgumentParser as usual.
    static func main() async {
        guard CommandLine.arguments.dropFirst().elementsEqual(["--version"]) else {
            do {
                var command = try parseAsRoot()
                if var asyncCommand = command as? AsyncParsableCommand {
                    try await asyncCommand.run()
                } else {
                    try command.run()
                }
            } catch {
                exit(withError: error)
            }
            return
        }
        print("leep \(version)")
        print("librdkafka \(KafkaLibrary.version) (\(KafkaLibrary.path ?? "path unknown"))")
        if let advice = KafkaLibrary.upgradeAdvice { print("  warning: \(advice)") }
        print("BLAS \(BLAS.description)")
    }
}
