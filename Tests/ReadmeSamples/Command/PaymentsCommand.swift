// README.md's command sample, verbatim (ReadmeSampleTests checks it stays so): compiled here.

import ArgumentParser

import SluiceCLI

@main
struct PaymentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "payments",
        subcommands: [RunCommand<Payments>.self, ReplayCommand<Payments>.self, ParkedCommand<Payments>.self])
}
