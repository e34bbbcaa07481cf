import Foundation

/// Why a record is dead-lettered, and what is known about it.
public struct DeadLetterReason: Sendable, Hashable {
    /// The stable error code, e.g. `PAYLOAD_SCHEMA_VIOLATION` or a handler's own code.
    public var code: SluiceError.Code
    /// What went wrong, for a person.
    public var message: String
    /// Whether the last error was retriable (retries then ran out).
    public var isRetriable: Bool
    /// Attempts made (1 for a record that was never retried).
    public var attempts: Int
    /// The handler that failed, when one did.
    public var handler: String?
    /// From the envelope, when it could be read that far.
    public var eventID: String?
    /// The envelope's `correlation_id`, when it had one.
    public var correlationID: String?

    /// Describes why a record is dead-lettered; ``DeadLetterRecord`` adds the provenance headers from it.
    public init(
        code: SluiceError.Code, message: String, isRetriable: Bool = false, attempts: Int = 1,
        handler: String? = nil, eventID: String? = nil, correlationID: String? = nil
    ) {
        self.code = code
        self.message = message
        self.isRetriable = isRetriable
        self.attempts = attempts
        self.handler = handler
        self.eventID = eventID
        self.correlationID = correlationID
    }
}

/// A record bound for a dead-letter topic: the original key, value and headers byte-exact, plus
/// the provenance headers of ``DeadLetterHeader``.
public struct DeadLetterRecord: Sendable, Hashable {
    /// The dead-letter topic.
    public var topic: String
    /// The original key.
    public var key: [UInt8]?
    /// The original value.
    public var value: [UInt8]?
    /// The original headers, then the provenance headers.
    public var headers: [RecordHeader]

    /// Builds the dead-letter form of `original`.
    ///
    /// Provenance headers already on the record (a record that was dead-lettered, re-driven and
    /// failed again) are replaced, so each name appears once and describes the latest failure.
    ///
    /// `traceParent` is the W3C `traceparent` of the span that failed, written as
    /// ``DeadLetterHeader/traceParent`` (`sluice.traceparent`); `nil` when nothing was traced.
    /// `parked` adds ``DeadLetterHeader/parked`` (`true`): the failure parked the record's key.
    public init(
        original: Record, topic: String, group: String, reason: DeadLetterReason, failedAt: Date,
        traceParent: String? = nil, parked: Bool = false
    ) {
        self.topic = topic
        self.key = original.key
        self.value = original.value
        let ours = Set(DeadLetterHeader.all)
        var headers = original.headers.filter { !ours.contains($0.name) }
        func add(_ name: String, _ value: String) { headers.append(RecordHeader(name: name, string: value)) }
        add(DeadLetterHeader.originalTopic, original.topic)
        add(DeadLetterHeader.originalPartition, String(original.partition))
        add(DeadLetterHeader.originalOffset, String(original.offset.rawValue))
        if let timestamp = original.timestamp { add(DeadLetterHeader.originalTimestamp, String(timestamp.milliseconds)) }
        add(DeadLetterHeader.consumerGroup, group)
        add(DeadLetterHeader.errorCode, reason.code.rawValue)
        add(DeadLetterHeader.errorMessage, reason.message)
        add(DeadLetterHeader.errorRetryable, reason.isRetriable ? "true" : "false")
        add(DeadLetterHeader.attempts, String(reason.attempts))
        add(DeadLetterHeader.failedAt, Self.rfc3339(failedAt))
        if let handler = reason.handler { add(DeadLetterHeader.handler, handler) }
        if let eventID = reason.eventID { add(DeadLetterHeader.eventID, eventID) }
        if let correlationID = reason.correlationID { add(DeadLetterHeader.correlationID, correlationID) }
        if let traceParent { add(DeadLetterHeader.traceParent, traceParent) }
        if parked { add(DeadLetterHeader.parked, "true") }
        self.headers = headers
    }

    static func rfc3339(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1_000).rounded(.down))
        var seconds = milliseconds / 1_000
        let fraction = milliseconds % 1_000
        let days = seconds / 86_400
        seconds %= 86_400
        // Civil-from-days (Howard Hinnant's algorithm), so no formatter or locale is involved.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis = fraction < 10 ? "00\(fraction)" : fraction < 100 ? "0\(fraction)" : "\(fraction)"
        return "\(year)-\(two(month))-\(two(day))T\(two(seconds / 3_600)):\(two(seconds % 3_600 / 60)):\(two(seconds % 60)).\(millis)Z"
    }
}

// MARK: - Stubs of letters too large for their topic

extension DeadLetterRecord {
    /// Bytes the letter takes at most as a Kafka record, alone in its record batch: its key,
    /// value and headers plus the largest framing the record format (v2) adds to them. It is
    /// never below what librdkafka counts against `message.max.bytes` or a broker against a
    /// topic's `max.message.bytes` (uncompressed).
    public var estimatedSize: Int {
        // A record batch's header (61 bytes), the record's own fields and length prefixes
        // (varints, at most 5 or 10 bytes each), and two length prefixes per header.
        var size = Self.batchOverhead + Self.recordOverhead + (key?.count ?? 0) + (value?.count ?? 0)
        for header in headers { size += Self.headerOverhead + header.name.utf8.count + (header.value?.count ?? 0) }
        return size
    }

    static let batchOverhead = 61
    static let recordOverhead = 5 + 1 + 10 + 5 + 5 + 5 + 5
    static let headerOverhead = 5 + 5
    /// Kept free below a known limit, so a stub fits even if the sink's framing differs a little.
    static let stubMargin = 256

    /// Whether the letter is a stub (it carries ``DeadLetterHeader/valueTruncated``).
    public var isTruncated: Bool { headers.contains { $0.name == DeadLetterHeader.valueTruncated } }

    /// Smaller forms of this letter to write when its topic refuses it as too large, the
    /// largest first; each is smaller than this letter (``estimatedSize``).
    ///
    /// Each stub keeps the provenance headers and adds ``DeadLetterHeader/valueTruncated``
    /// (`true`), ``DeadLetterHeader/valueSize`` (the original value's bytes) and
    /// ``DeadLetterHeader/valueSHA256`` (its hex SHA-256), so the original can be found and
    /// checked at its source offset. With a known `limit` (the largest record accepted, in bytes)
    /// the first stub keeps the original key and headers when they fit (the headers go first,
    /// then the key) and as much of the value, a prefix, as fits; with none known it keeps the
    /// key and headers with an empty value. The last is always the minimal stub: the provenance
    /// headers only, no key, an empty value.
    public func stubs(fittingIn limit: Int?) -> [DeadLetterRecord] {
        let ours = Set(DeadLetterHeader.all)
        let original = headers.filter { !ours.contains($0.name) }
        let value = self.value ?? []
        // A stub of a stub describes the same original value.
        let provenance: [RecordHeader]
        if isTruncated {
            provenance = headers.filter { ours.contains($0.name) }
        } else {
            provenance = headers.filter { ours.contains($0.name) } + [
                RecordHeader(name: DeadLetterHeader.valueTruncated, string: "true"),
                RecordHeader(name: DeadLetterHeader.valueSize, string: String(value.count)),
                RecordHeader(name: DeadLetterHeader.valueSHA256, string: PayloadHash.of(value)),
            ]
        }
        func stub(key: [UInt8]?, headers: [RecordHeader], value: ArraySlice<UInt8>) -> DeadLetterRecord {
            var stub = self
            stub.key = key
            stub.headers = headers + provenance
            stub.value = Array(value)
            return stub
        }
        var candidates: [DeadLetterRecord] = []
        // The original value of a stub is not at hand any more: only an empty value is smaller.
        let prefixable = isTruncated ? [] : value[...]
        if let limit {
            let budget = limit - Self.stubMargin
            for (key, headers) in [(key, original), (key, []), (nil, [])] {
                let empty = stub(key: key, headers: headers, value: [])
                let room = budget - empty.estimatedSize
                if room >= 0 {
                    candidates.append(stub(key: key, headers: headers, value: prefixable.prefix(room)))
                    break
                }
            }
        } else {
            candidates.append(stub(key: key, headers: original, value: []))
        }
        candidates.append(stub(key: nil, headers: [], value: []))
        var seen: [Int] = []
        return candidates.filter { candidate in
            let size = candidate.estimatedSize
            guard size < estimatedSize, !seen.contains(size) else { return false }
            seen.append(size)
            return true
        }
    }
}
