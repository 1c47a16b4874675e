import ArgumentParser

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
        version: "0.1.0",
        subcommands: [
            ScoreCommand.self, ProduceCommand.self, WorkerCommand.self, AggregateCommand.self, ScoresCommand.self,
            TopicsCommand.self,
        ]
    )
}
