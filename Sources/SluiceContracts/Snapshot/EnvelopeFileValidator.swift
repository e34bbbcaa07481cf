/// Runs the ``EnvelopeDecoder`` over every line of a JSON Lines file: either bare envelopes, one
/// per line, or a snapshot file whose records hold envelopes as their values.
///
/// This is what `sluice schemas validate` runs; it lives in the core so replay's `--dry-run`
/// and tests can run the same checks.
public struct EnvelopeFileValidator: Sendable {
    /// What the lines of a file hold.
    public enum Format: String, Sendable, CaseIterable {
        /// Decide per line: a JSON object with `topic` and `value`/`value_b64` members is a
        /// snapshot record, anything else is an envelope.
        case auto
        /// Every line is an envelope.
        case envelopes
        /// Every line is a snapshot record (see ``SnapshotRecordCoding``).
        case snapshot
    }

    /// One line that failed.
    public struct Failure: Sendable, Hashable {
        /// The 1-based line number.
        public var lineNumber: Int
        /// Why it failed: an envelope error, or `SNAPSHOT_LINE_INVALID`.
        public var error: SluiceError
        /// Where the record came from, for snapshot lines that could be read.
        public var topicPartitionOffset: String?
    }

    /// The outcome over a whole file.
    public struct Summary: Sendable, Hashable {
        /// Non-blank lines checked.
        public var linesChecked = 0
        /// Lines whose envelope passed every rule.
        public var validCount = 0
        /// Lines that failed, in file order.
        public var failures: [Failure] = []

        /// Failure counts per error code, most frequent first (ties by code).
        public var failureCountsByCode: [(code: String, count: Int)] {
            var counts: [String: Int] = [:]
            for failure in failures { counts[failure.error.code.rawValue, default: 0] += 1 }
            return counts.map { ($0.key, $0.value) }.sorted { ($1.count, $0.code) < ($0.count, $1.code) }
        }
    }

    /// The decoder each envelope goes through.
    public var decoder: EnvelopeDecoder

    /// Creates a validator.
    public init(decoder: EnvelopeDecoder) {
        self.decoder = decoder
    }

    /// Validates every non-blank line of `contents`.
    ///
    /// Lines end with `\n`; a trailing `\r` is ignored; blank lines are skipped (but counted in
    /// line numbers).
    public func validate(contents: [UInt8], format: Format = .auto) -> Summary {
        var summary = Summary()
        var lineNumber = 0
        var lineStart = 0
        var lastOffsets: [TopicPartition: (offset: Offset, line: Int)] = [:]
        while lineStart < contents.count {
            lineNumber += 1
            var lineEnd = lineStart
            while lineEnd < contents.count, contents[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
            var contentEnd = lineEnd
            if contentEnd > lineStart, contents[contentEnd - 1] == UInt8(ascii: "\r") { contentEnd -= 1 }
            let line = contents[lineStart..<contentEnd]
            lineStart = lineEnd + 1
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) { continue }

            summary.linesChecked += 1
            var (failure, record) = check(line: line, lineNumber: lineNumber, format: format)
            if let record {
                // As replay reads snapshots: each partition's offsets increase down the file.
                let partition = record.topicPartition
                if let last = lastOffsets[partition], record.offset <= last.offset, failure == nil {
                    failure = Failure(
                        lineNumber: lineNumber,
                        error: SluiceError(
                            code: .snapshotLineInvalid,
                            message: "offset \(record.offset.rawValue) of \(partition) does not come after offset \(last.offset.rawValue) on line \(last.line)",
                            path: "/offset"),
                        topicPartitionOffset: "\(record.topic)/\(record.partition)@\(record.offset.rawValue)")
                }
                lastOffsets[partition] = (max(record.offset, lastOffsets[partition]?.offset ?? record.offset), lineNumber)
            }
            if let failure {
                summary.failures.append(failure)
            } else {
                summary.validCount += 1
            }
        }
        return summary
    }

    /// Validates one line; `nil` when it passes.
    ///
    /// A snapshot line is checked on its own here; ``validate(contents:format:)`` also checks
    /// that each partition's offsets increase down the file.
    public func validate(line: ArraySlice<UInt8>, lineNumber: Int, format: Format) -> Failure? {
        check(line: line, lineNumber: lineNumber, format: format).failure
    }

    /// One line's failure, if any, and its record when it is a snapshot line that could be read.
    private func check(line: ArraySlice<UInt8>, lineNumber: Int, format: Format) -> (failure: Failure?, record: Record?) {
        let bytes = Array(line)
        let isSnapshot: Bool
        switch format {
        case .envelopes:
            isSnapshot = false
        case .snapshot:
            isSnapshot = true
        case .auto:
            isSnapshot = Self.looksLikeSnapshotRecord(bytes)
        }
        var location: String?
        var record: Record?
        do throws(SluiceError) {
            if isSnapshot {
                let decoded = try SnapshotRecordCoding.decode(line: bytes)
                record = decoded
                location = "\(decoded.topic)/\(decoded.partition)@\(decoded.offset.rawValue)"
                _ = try decoder.decode(decoded.value)
            } else {
                _ = try decoder.decode(bytes)
            }
            return (nil, record)
        } catch {
            return (Failure(lineNumber: lineNumber, error: error, topicPartitionOffset: location), record)
        }
    }

    private static func looksLikeSnapshotRecord(_ bytes: [UInt8]) -> Bool {
        // Generous limits: this only sniffs the shape; the real limits apply to the envelope.
        let limits = JSONParseLimits(
            maxBytes: max(bytes.count, 1), maxDepth: 64, maxStringLength: max(bytes.count, 1))
        do throws(JSONParseError) {
            return SnapshotRecordCoding.isSnapshotRecord(try JSONParser.parse(bytes, limits: limits))
        } catch {
            // Not JSON at all: validated as an envelope, which reports ENVELOPE_NOT_JSON.
            return false
        }
    }
}
