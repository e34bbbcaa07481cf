import Foundation

/// A replay's resume point: per partition, the next offset still to replay.
///
/// The file is one JSON object, `{"version":1,"positions":{"<topic>/<partition>":<next offset>,…}}`,
/// replaced atomically (written beside, then renamed) after outcomes are durable. An interrupted
/// replay run again with the same checkpoint skips what it already replayed.
public struct ReplayCheckpoint: Sendable, Hashable {
    /// Per partition, the next offset still to replay.
    public var positions: [TopicPartition: Offset]

    /// A checkpoint at `positions` (empty: nothing replayed yet).
    public init(positions: [TopicPartition: Offset] = [:]) {
        self.positions = positions
    }

    /// Reads `path`; a missing file is an empty checkpoint.
    ///
    /// - Throws: `SluiceError` with `SluiceError/Code/replayCheckpointInvalid`.
    public static func load(from path: String) throws(SluiceError) -> ReplayCheckpoint {
        guard let data = FileManager.default.contents(atPath: path) else { return ReplayCheckpoint() }
        guard case .object(let root)? = try? JSONParser.parse(Array(data)), case .object(let positions)? = root["positions"] else {
            throw SluiceError(code: .replayCheckpointInvalid, message: "\(path) is not a Sluice replay checkpoint")
        }
        var result: [TopicPartition: Offset] = [:]
        for (key, value) in positions.members {
            guard let slash = key.lastIndex(of: "/"), let partition = Int32(key[key.index(after: slash)...]),
                case .number(let number) = value, let offset = Int64(number.description)
            else {
                throw SluiceError(code: .replayCheckpointInvalid, message: "\(path): bad position '\(key)'")
            }
            result[TopicPartition(topic: String(key[..<slash]), partition: partition)] = Offset(offset)
        }
        return ReplayCheckpoint(positions: result)
    }

    /// Writes the checkpoint to `path` atomically.
    public func save(to path: String) throws {
        let entries = positions.sorted { $0.key < $1.key }.map { "\"\($0.key.topic)/\($0.key.partition)\":\($0.value.rawValue)" }
        let text = "{\"version\":1,\"positions\":{\(entries.joined(separator: ","))}}\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Whether `record` was replayed already.
    public func covers(_ record: Record) -> Bool {
        guard let position = positions[record.topicPartition] else { return false }
        return record.offset < position
    }
}

extension SluiceError.Code {
    /// A replay checkpoint file is not one.
    public static let replayCheckpointInvalid: Self = "REPLAY_CHECKPOINT_INVALID"
}
