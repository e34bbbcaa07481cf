import Foundation

/// Reads a snapshot file (JSON Lines of ``SnapshotRecordCoding`` records) in batches, streaming:
/// memory holds one chunk of the file and one batch, whatever the file's size.
public struct SnapshotReader: Sendable {
    /// The file.
    public let path: String
    /// Records per batch. Default: 500.
    public var batchSize: Int

    /// A reader of the snapshot file at `path`, `batchSize` records per batch.
    public init(path: String, batchSize: Int = 500) {
        self.path = path
        self.batchSize = max(1, batchSize)
    }

    /// The file's records in batches, in file order.
    ///
    /// The sequence throws ``SluiceError`` with ``SluiceError/Code/snapshotLineInvalid`` (the
    /// line number in the message) for a line that is not a snapshot record or whose offset does
    /// not come after its partition's previous one, and
    /// ``SluiceError/Code/snapshotUnreadable`` when the file cannot be read. Blank lines are skipped.
    public func batches() -> AsyncThrowingStream<[Record], any Error> {
        let path = self.path
        let batchSize = self.batchSize
        return AsyncThrowingStream(bufferingPolicy: .bufferingOldest(2)) { continuation in
            // File reads block: a thread of their own, never the cooperative pool.
            let thread = Thread {
                do {
                    try Self.read(path: path, batchSize: batchSize) { batch in
                        // Wait while the consumer is two batches behind: bounded memory.
                        while true {
                            switch continuation.yield(batch) {
                            case .enqueued: return true
                            case .terminated: return false
                            case .dropped: Thread.sleep(forTimeInterval: 0.002)
                            @unknown default: return false
                            }
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            thread.start()
        }
    }

    /// Reads the whole file without keeping it, checking every line, and returns how many
    /// records it holds: a replay checks its snapshot this way before it runs anything.
    ///
    /// - Throws: ``SluiceError`` as ``batches()`` would, for the first bad line.
    @discardableResult
    public func validate() throws -> Int {
        var count = 0
        try Self.read(path: path, batchSize: 1_000) { batch in
            count += batch.count
            return true
        }
        return count
    }

    /// Every record of the file (for small files: tests, fixtures).
    public func readAll() throws -> [Record] {
        var records: [Record] = []
        try Self.read(path: path, batchSize: 1_000) { batch in
            records.append(contentsOf: batch)
            return true
        }
        return records
    }

    private static func read(path: String, batchSize: Int, deliver: ([Record]) -> Bool) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw SluiceError(code: .snapshotUnreadable, message: "cannot open the snapshot file \(path)")
        }
        defer { try? handle.close() }
        var pending: [UInt8] = []
        var batch: [Record] = []
        var lineNumber = 0
        var lastOffsets: [TopicPartition: (offset: Offset, line: Int)] = [:]
        func take(_ line: ArraySlice<UInt8>) throws {
            lineNumber += 1
            var line = line
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            guard line.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }) else { return }
            let record: Record
            do {
                record = try SnapshotRecordCoding.decode(line: line)
            } catch {
                throw SluiceError(
                    code: .snapshotLineInvalid, message: "\(path):\(lineNumber): \(error.message)", path: error.path, underlying: error)
            }
            // Replays take a partition's records in offset order and pass over offsets they have
            // had; a file that goes back would lose records quietly, so it is refused instead.
            let partition = record.topicPartition
            if let last = lastOffsets[partition], record.offset <= last.offset {
                throw SluiceError(
                    code: .snapshotLineInvalid,
                    message: "\(path):\(lineNumber): offset \(record.offset.rawValue) of \(partition) does not come after offset "
                        + "\(last.offset.rawValue) on line \(last.line); a snapshot lists each partition's records in increasing "
                        + "offset order, as sluice export writes them",
                    path: "/offset")
            }
            lastOffsets[partition] = (record.offset, lineNumber)
            batch.append(record)
        }
        while true {
            let chunk: Data
            do {
                chunk = try handle.read(upToCount: 1 << 20) ?? Data()
            } catch {
                throw SluiceError(code: .snapshotUnreadable, message: "reading \(path) failed: \(error)", underlying: error)
            }
            if chunk.isEmpty { break }
            pending.append(contentsOf: chunk)
            var start = pending.startIndex
            while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                try take(pending[start..<newline])
                start = newline + 1
                if batch.count >= batchSize {
                    guard deliver(batch) else { return }
                    batch.removeAll(keepingCapacity: true)
                }
            }
            pending.removeFirst(start - pending.startIndex)
        }
        if !pending.isEmpty { try take(pending[...]) }
        if !batch.isEmpty { _ = deliver(batch) }
    }
}

extension SluiceError.Code {
    /// A snapshot file could not be opened or read.
    public static let snapshotUnreadable: Self = "SNAPSHOT_UNREADABLE"
}
