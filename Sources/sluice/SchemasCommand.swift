import ArgumentParser
import Foundation
import Sluice

/// `sluice schemas check|validate`: the schema-evolution gate and an envelope file checker.
struct SchemasCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schemas",
        abstract: "Check schema evolution and validate envelopes against EventSchemas.",
        subcommands: [Check.self, Validate.self]
    )

    /// `sluice schemas check`.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare each schema version with the previous one; fail on a breaking change.",
            discussion: """
                Prints every change as schema, path, rule and verdict. Exits 1 when any change \
                is BREAKING, 2 when the schemas cannot be loaded. WARNING changes (an enum value \
                added) are reported but exit 0.
                """
        )

        @Option(name: .long, help: "The EventSchemas directory.")
        var dir: String = "EventSchemas"

        func run() throws {
            let registry = try loadRegistry(dir)
            let report = SchemaCompatibility.check(registry)

            var rows: [[String]] = [["SCHEMA", "PATH", "RULE", "VERDICT", "DETAIL"]]
            for comparison in report.comparisons {
                let changes = report.changes(of: comparison)
                let label = "\(comparison.eventType) v\(comparison.fromVersion)→v\(comparison.toVersion)"
                if changes.isEmpty { rows.append([label, "/", "unchanged", "PASS", "no validation change"]) }
                for change in changes {
                    rows.append([
                        label, change.path.isEmpty ? "/" : change.path, change.rule, change.verdict.rawValue,
                        change.detail,
                    ])
                }
            }
            if report.comparisons.isEmpty {
                print("No event type has two versions yet: nothing to compare.")
            } else {
                print(TextTable.render(rows))
                print("")
            }

            let breaking = report.changes.filter { $0.verdict == .breaking }.count
            let warnings = report.changes.filter { $0.verdict == .warning }.count
            let types = registry.eventTypes.count
            let schemas = registry.eventTypes.reduce(0) { $0 + registry.versions(of: $1).count }
            print(
                "Checked \(types) event type\(types == 1 ? "" : "s") (\(schemas) schema\(schemas == 1 ? "" : "s")), "
                    + "\(report.comparisons.count) comparison\(report.comparisons.count == 1 ? "" : "s"): "
                    + "\(breaking) breaking, \(warnings) warning\(warnings == 1 ? "" : "s").")
            if breaking > 0 {
                print("FAILED: \(breaking) breaking change\(breaking == 1 ? "" : "s"). Add a new event type or make the change additive.")
                throw ExitCode(1)
            }
            if warnings > 0 {
                print("OK with warnings: warnings do not fail the check (exit 0), but tell the consumers.")
            } else {
                print("OK: every change is compatible.")
            }
        }
    }

    /// `sluice schemas validate`.
    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a JSON Lines file of envelopes, or a snapshot file, against EventSchemas.",
            discussion: """
                Each failing line is printed with its line number, error code and JSON-pointer \
                path, then a summary. Exits 1 when any line fails, 2 when the schemas or the \
                file cannot be read.
                """
        )

        @Option(name: .long, help: "The JSON Lines file: one envelope per line, or a snapshot file.")
        var file: String

        @Option(name: .long, help: "The EventSchemas directory.")
        var dir: String = "EventSchemas"

        @Option(name: .long, help: "What the lines hold: auto, envelopes or snapshot.")
        var format: EnvelopeFileValidator.Format = .auto

        func run() throws {
            let registry = try loadRegistry(dir)
            let contents: Data
            do {
                contents = try Data(contentsOf: URL(fileURLWithPath: file))
            } catch {
                printError("error: cannot read \(file): \(error.localizedDescription)")
                throw ExitCode(2)
            }
            let validator = EnvelopeFileValidator(decoder: EnvelopeDecoder(registry: registry))
            let summary = validator.validate(contents: Array(contents), format: format)

            for failure in summary.failures {
                let location = failure.topicPartitionOffset.map { " (\($0))" } ?? ""
                let path = failure.error.path.map { $0.isEmpty ? "/" : $0 } ?? "-"
                print(
                    "line \(failure.lineNumber)\(location): \(failure.error.code) at \(path): \(failure.error.message)")
            }
            if !summary.failures.isEmpty { print("") }
            var line = "Checked \(summary.linesChecked) line\(summary.linesChecked == 1 ? "" : "s"): "
                + "\(summary.validCount) valid, \(summary.failures.count) failed"
            if !summary.failures.isEmpty {
                let counts = summary.failureCountsByCode.map { "\($0.code): \($0.count)" }
                line += " (" + counts.joined(separator: ", ") + ")"
            }
            print(line + ".")
            if !summary.failures.isEmpty { throw ExitCode(1) }
        }
    }
}

extension EnvelopeFileValidator.Format: ExpressibleByArgument {}

/// Loads the registry or exits 2 with the reason on stderr.
private func loadRegistry(_ directory: String) throws -> SchemaRegistry {
    do throws(SluiceError) {
        return try SchemaRegistry(directory: directory)
    } catch {
        printError("error: the schemas in \(directory) cannot be loaded: \(error)")
        throw ExitCode(2)
    }
}

private func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Left-aligned columns, two spaces apart, for terminal output.
private enum TextTable {
    static func render(_ rows: [[String]]) -> String {
        guard let columnCount = rows.map(\.count).max() else { return "" }
        var widths = Array(repeating: 0, count: columnCount)
        for row in rows {
            // The last column is not padded, so a long detail does not widen every line.
            for (index, cell) in row.enumerated() where index < columnCount - 1 {
                widths[index] = max(widths[index], cell.count)
            }
        }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index < columnCount - 1 ? cell.padding(toLength: widths[index], withPad: " ", startingAt: 0) : cell
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
