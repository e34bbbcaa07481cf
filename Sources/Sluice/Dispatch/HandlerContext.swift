import Instrumentation
import Logging

/// What a handler knows about the event it handles and where it runs.
///
/// - Important: ``transaction`` is only valid while the handler runs. Write the handler's own
///   state through it, so that the state, the processed-event record and the partition's offset
///   commit together. Never begin or commit a transaction yourself.
public struct HandlerContext<Transaction> {
    /// The validated envelope (metadata and raw `data`).
    public let envelope: Envelope
    /// The record as read: topic, partition, offset, timestamp, key, headers and value.
    public let record: Record
    /// A logger carrying the record's metadata (`kafka.topic`, `kafka.partition`, `kafka.offset`,
    /// `event.id`, `event.type`, `correlation.id`, `causation.id`, `sluice.handler`).
    ///
    /// Made when read: a handler that logs nothing costs no metadata. Read it once into a local
    /// when logging several lines.
    public var logger: Logger { log.logger(handler: handlerName) }
    let log: RecordLog
    /// Whether this run is a replay of history. Handlers skip side effects that must not happen
    /// twice (an email, a payment call) when it is.
    public let isReplay: Bool
    /// The attempt number, from 1.
    public let attempt: Int
    /// The name the handler was registered under.
    public let handlerName: String
    /// The store transaction the handler runs in.
    public let transaction: Transaction
    /// The trace context of this attempt: its `sluice.handle <handler>` span, a child of the
    /// record's `sluice.process` span, when the pipeline traces (it is also bound as
    /// `ServiceContext.current` while the handler runs, so instrumented clients join the trace
    /// without being handed it); otherwise the caller's current context, or a top-level one.
    public internal(set) var serviceContext: ServiceContext {
        get { attemptContext ?? ServiceContext.current ?? .topLevel }
        set { attemptContext = newValue }
    }
    private var attemptContext: ServiceContext?

    init(
        envelope: Envelope, record: Record, log: RecordLog, isReplay: Bool, attempt: Int, handlerName: String,
        transaction: Transaction
    ) {
        self.envelope = envelope
        self.record = record
        self.log = log
        self.isReplay = isReplay
        self.attempt = attempt
        self.handlerName = handlerName
        self.transaction = transaction
    }
}

/// A record's log metadata, turned into a `Logger` only when a line is about to be logged:
/// formatting the metadata of every record (string interpolation, dictionary copies) costs the
/// hot path several percent for lines that are almost never written.
struct RecordLog: Sendable {
    /// The envelope's identifiers, once the record decoded.
    struct EnvelopeIDs: Sendable {
        var eventID: String
        var eventType: String
        var correlationID: String
        var causationID: String

        init(_ envelope: Envelope) {
            eventID = envelope.eventID
            eventType = envelope.eventType
            correlationID = envelope.correlationID
            causationID = envelope.causationID
        }
    }

    let base: Logger
    let topic: String
    let partition: Int32
    let offset: Int64
    var envelope: EnvelopeIDs?
    /// The record's `sluice.process` span, when the pipeline traces. It travels with the log
    /// metadata because both describe the record and go wherever it goes (grouped, alone,
    /// retried, dead-lettered).
    var span: RecordSpan?

    init(base: Logger, record: Record) {
        self.base = base
        topic = record.topic
        partition = record.partition
        offset = record.offset.rawValue
    }

    /// The logger with the record's metadata (`kafka.*`, and the envelope's ids when it decoded).
    var logger: Logger {
        var logger = base
        logger[metadataKey: "kafka.topic"] = "\(topic)"
        logger[metadataKey: "kafka.partition"] = "\(partition)"
        logger[metadataKey: "kafka.offset"] = "\(offset)"
        if let envelope {
            logger[metadataKey: "event.id"] = "\(envelope.eventID)"
            logger[metadataKey: "event.type"] = "\(envelope.eventType)"
            logger[metadataKey: "correlation.id"] = "\(envelope.correlationID)"
            logger[metadataKey: "causation.id"] = "\(envelope.causationID)"
        }
        return logger
    }

    /// ``logger`` with `sluice.handler`.
    func logger(handler: String) -> Logger {
        var logger = self.logger
        logger[metadataKey: "sluice.handler"] = "\(handler)"
        return logger
    }
}
