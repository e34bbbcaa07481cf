import CRDKafka
import Logging
import Sluice

/// What a rebalance callback tells the consumer layer above the C handle.
enum RDKafkaRebalanceEvent: Sendable {
    /// Partitions are about to be assigned.
    case assigned([TopicPartition])
    /// Partitions are about to be revoked; `lost` when the group already gave them to someone else.
    case revoked([TopicPartition], lost: Bool)
}

/// Everything librdkafka calls back into. It is the configuration's opaque pointer, retained for
/// exactly the handle's lifetime and released only after `rd_kafka_destroy` returned, so no
/// callback can ever see it freed.
final class RDKafkaCallbacks: Sendable {
    let logger: Logger
    let redactor: SecretRedactor
    /// Called on the thread that polls (or closes) the consumer. It returns start offsets for
    /// assigned partitions that must not start at the committed offset.
    let onRebalance: (@Sendable (RDKafkaRebalanceEvent) -> [TopicPartition: Offset])?
    /// Called for errors librdkafka reports outside of any request (`error_cb`).
    let onError: (@Sendable (KafkaError) -> Void)?
    /// Turns endless handshake warnings into one error that says what to check.
    let connectionWatch: RDKafkaConnectionWatch

    init(
        logger: Logger,
        redactor: SecretRedactor,
        onRebalance: (@Sendable (RDKafkaRebalanceEvent) -> [TopicPartition: Offset])?,
        onError: (@Sendable (KafkaError) -> Void)?,
        connectionWatch: RDKafkaConnectionWatch
    ) {
        self.connectionWatch = connectionWatch
        self.logger = logger
        self.redactor = redactor
        self.onRebalance = onRebalance
        self.onError = onError
    }

    static func from(_ handle: OpaquePointer?) -> RDKafkaCallbacks? {
        guard let handle, let opaque = rd_kafka_opaque(handle) else { return nil }
        return Unmanaged<RDKafkaCallbacks>.fromOpaque(opaque).takeUnretainedValue()
    }
}

/// The one owner of an `rd_kafka_t` handle.
///
/// `@unchecked Sendable`: the only state is the handle pointer, which never changes after `init`,
/// and librdkafka documents every call made through it here as thread-safe. Calls that block
/// (poll, commit, flush, metadata, close) are made by the Swift types above this one on their own
/// threads, never on the cooperative pool.
final class RDKafkaClient: @unchecked Sendable {
    enum Kind {
        case consumer
        case producer
    }

    /// The librdkafka version Sluice needs at least: 2.0.0.
    static let minimumVersion: Int32 = 0x0200_00FF

    let handle: OpaquePointer
    let kind: Kind
    let callbacks: RDKafkaCallbacks
    private let retainedCallbacks: Unmanaged<RDKafkaCallbacks>

    var logger: Logger { callbacks.logger }
    var redactor: SecretRedactor { callbacks.redactor }

    /// Creates a handle from a complete librdkafka property set.
    ///
    /// - Throws: ``KafkaError`` with code ``KafkaError/Code/librdkafkaTooOld`` for an old library,
    ///   ``KafkaError/Code/unknownProperty`` or ``KafkaError/Code/invalidProperty`` naming the property.
    init(
        kind: Kind,
        properties: [String: String],
        logger: Logger,
        deliveryReports: Bool = false,
        onRebalance: (@Sendable (RDKafkaRebalanceEvent) -> [TopicPartition: Offset])? = nil,
        onError: (@Sendable (KafkaError) -> Void)? = nil
    ) throws(KafkaError) {
        try RDKafkaClient.checkLibraryVersion()
        let redactor = SecretRedactor(properties: properties)
        let callbacks = RDKafkaCallbacks(
            logger: logger, redactor: redactor, onRebalance: onRebalance, onError: onError,
            connectionWatch: RDKafkaConnectionWatch(properties: properties, logger: logger))

        guard let conf = rd_kafka_conf_new() else {
            throw KafkaError.failure("rd_kafka_conf_new failed (out of memory)")
        }
        do {
            try RDKafkaClient.apply(properties, to: conf, redactor: redactor)
        } catch {
            rd_kafka_conf_destroy(conf)
            throw error
        }

        let retained = Unmanaged.passRetained(callbacks)
        rd_kafka_conf_set_opaque(conf, retained.toOpaque())
        rd_kafka_conf_set_log_cb(conf, rdKafkaLogCallback)
        rd_kafka_conf_set_error_cb(conf, rdKafkaErrorCallback)
        if onRebalance != nil {
            rd_kafka_conf_set_rebalance_cb(conf, rdKafkaRebalanceCallback)
        }
        if deliveryReports {
            rd_kafka_conf_set_dr_msg_cb(conf, rdKafkaDeliveryReportCallback)
        }

        var errorText = [CChar](repeating: 0, count: 512)
        let type = kind == .consumer ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER
        guard let handle = rd_kafka_new(type, conf, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(conf)
            retained.release()
            throw KafkaError(
                code: .invalidProperty, number: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue,
                message: redactor.redact("cannot create the client: " + errorText.nulTerminatedString))
        }
        self.handle = handle
        self.kind = kind
        self.callbacks = callbacks
        self.retainedCallbacks = retained
        if kind == .consumer {
            // Serve rebalances, errors and logs from the consumer queue, which Sluice polls.
            rd_kafka_poll_set_consumer(handle)
        }
    }

    deinit {
        rd_kafka_destroy(handle)
        retainedCallbacks.release()
    }

    /// Refuses to run on a librdkafka older than ``minimumVersion``.
    static func checkLibraryVersion(
        _ version: Int32 = rd_kafka_version(), named name: String = libraryVersion
    ) throws(KafkaError) {
        guard version >= minimumVersion else {
            throw KafkaError(
                code: .librdkafkaTooOld, number: RD_KAFKA_RESP_ERR__NOT_IMPLEMENTED.rawValue,
                message: "Sluice needs librdkafka 2.0.0 or newer; this process loaded \(name). "
                    + "Install a newer librdkafka (Debian/Ubuntu: librdkafka-dev).")
        }
    }

    /// The loaded librdkafka's version string, e.g. `2.0.2`.
    static var libraryVersion: String { String(cString: rd_kafka_version_str()) }

    private static func apply(
        _ properties: [String: String], to conf: OpaquePointer, redactor: SecretRedactor
    ) throws(KafkaError) {
        var errorText = [CChar](repeating: 0, count: 512)
        for (name, value) in properties.sorted(by: { $0.key < $1.key }) {
            let result = rd_kafka_conf_set(conf, name, value, &errorText, errorText.count)
            switch result {
            case RD_KAFKA_CONF_OK:
                continue
            case RD_KAFKA_CONF_UNKNOWN:
                throw KafkaError(
                    code: .unknownProperty, number: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue,
                    message: "unknown librdkafka configuration property '\(name)'",
                    property: name)
            default:
                let detail = redactor.redact(errorText.nulTerminatedString)
                throw KafkaError(
                    code: .invalidProperty, number: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue,
                    message: "invalid value for librdkafka configuration property '\(name)': \(detail)",
                    property: name)
            }
        }
    }

    // MARK: Errors

    /// A ``KafkaError`` for a librdkafka response code.
    func error(_ code: rd_kafka_resp_err_t, context: String? = nil) -> KafkaError {
        RDKafkaClient.error(code, context: context, redactor: redactor)
    }

    static func error(_ code: rd_kafka_resp_err_t, context: String? = nil, redactor: SecretRedactor) -> KafkaError {
        let name = String(cString: rd_kafka_err2name(code))
        var message = String(cString: rd_kafka_err2str(code))
        if let context { message = "\(context): \(message)" }
        return KafkaError(
            code: KafkaError.Code(rawValue: name), number: code.rawValue,
            message: redactor.redact(message),
            isRetriable: isRetriable(code), isFatal: code == RD_KAFKA_RESP_ERR__FATAL)
    }

    /// A ``KafkaError`` for a librdkafka `rd_kafka_error_t`, which it destroys.
    func consume(_ errorObject: OpaquePointer, context: String) -> KafkaError {
        defer { rd_kafka_error_destroy(errorObject) }
        let code = rd_kafka_error_code(errorObject)
        return KafkaError(
            code: KafkaError.Code(rawValue: String(cString: rd_kafka_error_name(errorObject))),
            number: code.rawValue,
            message: redactor.redact("\(context): " + String(cString: rd_kafka_error_string(errorObject))),
            isRetriable: rd_kafka_error_is_retriable(errorObject) != 0 || RDKafkaClient.isRetriable(code),
            isFatal: rd_kafka_error_is_fatal(errorObject) != 0)
    }

    /// The fatal error raised on this handle, if any.
    func fatalError() -> KafkaError? {
        var text = [CChar](repeating: 0, count: 512)
        let code = rd_kafka_fatal_error(handle, &text, text.count)
        guard code != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return KafkaError(
            code: KafkaError.Code(rawValue: String(cString: rd_kafka_err2name(code))),
            number: code.rawValue, message: redactor.redact(text.nulTerminatedString),
            isRetriable: false, isFatal: true)
    }

    /// Errors that a later attempt of the same request can get past.
    static func isRetriable(_ code: rd_kafka_resp_err_t) -> Bool {
        switch code {
        case RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
            RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, RD_KAFKA_RESP_ERR__RESOLVE, RD_KAFKA_RESP_ERR__WAIT_COORD,
            RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE, RD_KAFKA_RESP_ERR__QUEUE_FULL, RD_KAFKA_RESP_ERR__PARTIAL,
            RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION,
            RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
            RD_KAFKA_RESP_ERR_NOT_COORDINATOR, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
            RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR,
            RD_KAFKA_RESP_ERR_FETCH_SESSION_ID_NOT_FOUND, RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT,
            RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED, RD_KAFKA_RESP_ERR__IN_PROGRESS,
            RD_KAFKA_RESP_ERR__RETRY:
            true
        default:
            false
        }
    }
}

// MARK: - C callbacks

private let rdKafkaLogCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = {
    handle, level, facility, text in
    guard let callbacks = RDKafkaCallbacks.from(handle) else { return }
    let message = callbacks.redactor.redact(text.map { String(cString: $0) } ?? "")
    let logLevel: Logger.Level =
        switch level {
        case ...2: .critical
        case 3: .error
        case 4: .warning
        case 5: .notice
        case 6: .info
        default: .debug
        }
    callbacks.logger.log(
        level: logLevel, "\(message)",
        metadata: ["librdkafka.facility": "\(facility.map { String(cString: $0) } ?? "")"])
    // Log lines, not error callbacks: every client logs (nobody polls an admin client for errors),
    // and each failed attempt is logged once.
    if level <= 6 { callbacks.connectionWatch.note(message) }
}

private let rdKafkaErrorCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = {
    handle, code, reason, _ in
    guard let callbacks = RDKafkaCallbacks.from(handle) else { return }
    let errorCode = rd_kafka_resp_err_t(rawValue: code)
    var error = RDKafkaClient.error(errorCode, redactor: callbacks.redactor)
    if let reason { error.message = callbacks.redactor.redact(String(cString: reason)) }
    callbacks.logger.log(
        level: error.isFatal ? .critical : .warning, "librdkafka error: \(error.message)",
        metadata: ["kafka.error.code": "\(error.code)"])
    callbacks.onError?(error)
}

private let rdKafkaRebalanceCallback: @convention(c) (OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?) -> Void = {
    handle, code, partitions, _ in
    guard let handle, let callbacks = RDKafkaCallbacks.from(handle) else { return }
    let cooperative = String(cString: rd_kafka_rebalance_protocol(handle)) == "COOPERATIVE"
    let list = partitions.map(RDKafkaTopicPartitionList.topicPartitions(in:)) ?? []
    switch code {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        let overrides = callbacks.onRebalance?(.assigned(list)) ?? [:]
        if let partitions {
            RDKafkaTopicPartitionList.setOffsets(overrides, in: partitions)
        }
        if cooperative {
            if let failure = rd_kafka_incremental_assign(handle, partitions) {
                callbacks.logger.error("assigning partitions failed: \(String(cString: rd_kafka_error_string(failure)))")
                rd_kafka_error_destroy(failure)
            }
        } else {
            let code = rd_kafka_assign(handle, partitions)
            if code != RD_KAFKA_RESP_ERR_NO_ERROR {
                callbacks.logger.error("assigning partitions failed: \(String(cString: rd_kafka_err2str(code)))")
            }
        }
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        let lost = rd_kafka_assignment_lost(handle) != 0
        _ = callbacks.onRebalance?(.revoked(list, lost: lost))
        if cooperative {
            if let failure = rd_kafka_incremental_unassign(handle, partitions) {
                callbacks.logger.error("unassigning partitions failed: \(String(cString: rd_kafka_error_string(failure)))")
                rd_kafka_error_destroy(failure)
            }
        } else {
            rd_kafka_assign(handle, nil)
        }
    default:
        callbacks.logger.error("rebalance failed: \(String(cString: rd_kafka_err2str(code)))")
        _ = callbacks.onRebalance?(.revoked(list, lost: true))
        rd_kafka_assign(handle, nil)
    }
}

extension [CChar] {
    /// The text up to the first NUL of a C error buffer.
    var nulTerminatedString: String {
        let end = firstIndex(of: 0) ?? endIndex
        return String(decoding: self[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension RDKafkaClient {
    /// Whether every `rd_kafka_t` of the process was destroyed within the timeout.
    ///
    /// - Important: Blocks.
    static func waitForAllDestroyed(timeoutMilliseconds: Int32) -> Bool {
        rd_kafka_wait_destroyed(timeoutMilliseconds) == 0
    }
}
