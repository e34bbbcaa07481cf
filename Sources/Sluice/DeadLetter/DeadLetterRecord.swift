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
    public init(original: Record, topic: String, group: String, reason: DeadLetterReason, failedAt: Date) {
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
