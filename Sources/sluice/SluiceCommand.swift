import ArgumentParser

/// `sluice`: the operator tool for Sluice consumer services.
@main
struct SluiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Operator tool for Sluice: a local broker, schemas, topics and dead letters.",
        subcommands: [
            DevBrokerCommand.self,
            SchemasCommand.self,
            ProduceCommand.self,
            ExportCommand.self,
            DeadLetterCommand.self,
            LagCommand.self,
        ]
    )
}
