import ArgumentParser
import Foundation
import Logging
import Synchronization

/// A `LogHandler` that writes one JSON object per line, for log pipelines that ingest JSON
/// (`--log-format json`).
///
/// Each line has `timestamp` (RFC 3339 with milliseconds, UTC), `level`, `label`, `message` and
/// `source` (the module that logged), then every metadata key as a field of its own
/// (`"kafka.topic":"orders"`); a metadata key spelled like one of those five is written with a
/// `metadata.` prefix instead. Metadata values are strings, arrays and objects as swift-log holds
/// them.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let write: @Sendable (String) -> Void

    /// A handler for `label` writing to standard error.
    public static func standardError(label: String) -> JSONLogHandler {
        JSONLogHandler(label: label, metadataProvider: nil) { line in
            Self.standardErrorLock.withLock { _ in FileHandle.standardError.write(Data(line.utf8)) }
        }
    }

    /// Whole lines, one write each, in the order they were logged across threads.
    private static let standardErrorLock = Mutex(())

    /// A handler for `label` that hands each line (ending in a newline) to `write`.
    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil, write: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    static let reservedKeys: Set<String> = ["timestamp", "level", "label", "message", "source"]

    public func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { _, new in new } }
        if let extra = event.metadata { fields.merge(extra) { _, new in new } }
        var line = "{"
        func field(_ key: String, _ value: String) {
            if line.count > 1 { line += "," }
            Self.appendString(key, to: &line)
            line += ":" + value
        }
        func quoted(_ text: String) -> String {
            var out = ""
            Self.appendString(text, to: &out)
            return out
        }
        field("timestamp", quoted(Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true))))
        field("level", quoted(event.level.rawValue))
        field("label", quoted(label))
        field("message", quoted(event.message.description))
        field("source", quoted(event.source))
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            field(Self.reservedKeys.contains(key) ? "metadata.\(key)" : key, Self.json(value))
        }
        line += "}\n"
        write(line)
    }

    static func json(_ value: Logger.Metadata.Value) -> String {
        var out = ""
        switch value {
        case .string(let text): appendString(text, to: &out)
        case .stringConvertible(let convertible): appendString(convertible.description, to: &out)
        case .array(let values): out = "[" + values.map(json).joined(separator: ",") + "]"
        case .dictionary(let values):
            out = "{" + values.sorted(by: { $0.key < $1.key }).map { key, value in
                var entry = ""
                appendString(key, to: &entry)
                return entry + ":" + json(value)
            }.joined(separator: ",") + "}"
        }
        return out
    }

    /// Appends `text` as a JSON string: quotes, backslashes and control characters escaped.
    static func appendString(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let control where control.value < 0x20 || control.value == 0x7F:
                out += "\\u" + String(repeating: "0", count: 4 - String(control.value, radix: 16).count) + String(control.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

/// How `run` and `replay` write their logs (`--log-format`).
enum LogFormat: String, CaseIterable, Sendable {
    /// swift-log's `StreamLogHandler` on standard error: one human-readable line per entry.
    case text
    /// ``JSONLogHandler``: one JSON object per line.
    case json

    /// A logger for `label` at `level` in this format, on standard error.
    func logger(label: String, level: Logger.Level) -> Logger {
        var logger = switch self {
        case .text: Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        case .json: Logger(label: label) { JSONLogHandler.standardError(label: $0) }
        }
        logger.logLevel = level
        return logger
    }

    static func validate(_ text: String) throws {
        guard LogFormat(rawValue: text) != nil else { throw ValidationError("--log-format is text or json, not '\(text)'") }
    }
}
