import Foundation

/// What a poison record's ordering scope is called by: the record's Kafka key, or the envelope's
/// `subject`, as bytes. Two records with the same parking key are events of one entity, whose
/// order matters.
public struct ParkingKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The key's bytes.
    public var bytes: [UInt8]

    /// The key of these bytes.
    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The key of a string (its UTF-8 bytes).
    public init(_ string: String) {
        self.bytes = Array(string.utf8)
    }

    /// A key as a person writes it on a command line: `hex:` followed by hex digits for bytes
    /// that are not printable UTF-8 (as ``description`` writes them), otherwise the text itself.
    /// `nil` for `hex:` followed by anything but an even number of hex digits.
    public init?(argument: String) {
        guard argument.hasPrefix("hex:") else {
            self.init(argument)
            return
        }
        let digits = Array(argument.utf8.dropFirst(4))
        guard !digits.isEmpty, digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = Self.hexValue(digits[index]), let low = Self.hexValue(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        self.init(bytes)
    }

    /// The key as text when it is printable UTF-8 (and does not itself begin with `hex:`),
    /// otherwise `hex:` and its bytes in lower-case hex.
    public var description: String {
        if let text = String(validating: bytes, as: UTF8.self), !text.isEmpty, !text.hasPrefix("hex:"),
            text.unicodeScalars.allSatisfy({ !$0.properties.generalCategory.isControl })
        {
            return text
        }
        return "hex:" + bytes.map { byte in
            let digits = Array("0123456789abcdef".utf8)
            return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]], as: UTF8.self)
        }.joined()
    }

    public static func < (lhs: ParkingKey, rhs: ParkingKey) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension Unicode.GeneralCategory {
    fileprivate var isControl: Bool {
        switch self {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator: true
        default: false
        }
    }
}

/// How the pipeline treats poison records and the records of keys already parked
/// (``EventPipeline/Configuration/parking``).
///
/// With ``Mode/park``, a record that fails for good (handler retries exhausted, a non-retriable
/// handler error, a payload mismatch) is dead-lettered as with ``Mode/off``, its dead letter
/// carrying `sluice.parked: true`, and its key becomes parked for the group and topic: in one
/// store transaction the store records the key, the record (all of its bytes) and the
/// partition's next offset. Every later record of a parked key is not handled but appended to
/// the key's parked sequence, in offset order, in the transaction that stores its offset.
/// Records of other keys flow as before. Records whose envelope cannot be read are dead-lettered
/// without parking: they say nothing reliable about their key. A record without a key (or, by
/// subject, without a subject) is never parked.
public struct Parking: Sendable, Hashable {
    /// What orders events: what becomes parked.
    public enum Scope: String, Sendable, Hashable, CaseIterable {
        /// The record's Kafka key (the default).
        case key
        /// The envelope's `subject`.
        case subject
    }

    /// What the pipeline does about parked keys.
    public enum Mode: String, Sendable, Hashable {
        /// Poison records are dead-lettered and their partition moves on (the default); parked
        /// keys are not looked up at all.
        case off
        /// Poison records park their key; later records of a parked key are appended to its
        /// sequence (`run --on-poison park`).
        case park
        /// Records of a parked key are neither handled nor appended: skipped as
        /// `KEY_PARKED` (a replay's default); poison is dead-lettered only.
        case skip
    }

    /// For every topic without its own entry in ``topics``. Default: ``Mode/off``.
    public var mode: Mode
    /// The mode of single topics (a poison policy per topic), over ``mode``.
    public var topics: [String: Mode]
    /// Default: ``Scope/key``.
    public var scope: Scope

    /// Parking in `mode` (and per topic in `topics`), by `scope`.
    public init(mode: Mode = .off, topics: [String: Mode] = [:], scope: Scope = .key) {
        self.mode = mode
        self.topics = topics
        self.scope = scope
    }

    /// The mode for records of `topic`.
    public func mode(for topic: String) -> Mode { topics[topic] ?? mode }

    /// Poison records are dead-lettered; nothing is parked or looked up.
    public static let off = Parking()

    /// The parking key of `record` (whose envelope, when it decoded, is `envelope`), by this
    /// scope: `nil` when the record has none (no key, an empty key, no subject).
    public func key(of record: Record, envelope: Envelope?) -> ParkingKey? {
        switch scope {
        case .key:
            guard let key = record.key, !key.isEmpty else { return nil }
            return ParkingKey(key)
        case .subject:
            guard let subject = envelope?.subject, !subject.isEmpty else { return nil }
            return ParkingKey(subject)
        }
    }
}

/// Why a key is parked: the failure of the record at the head of its sequence.
public struct ParkingFailure: Sendable, Hashable {
    /// The stable error code (as in the dead letter's `sluice.error.code`).
    public var code: SluiceError.Code
    /// The error, for a person.
    public var message: String
    /// The handler that failed, when one did.
    public var handler: String?
    /// When it failed.
    public var failedAt: Date

    /// A failure with `code` and `message`, of `handler`, at `failedAt`.
    public init(code: SluiceError.Code, message: String, handler: String? = nil, failedAt: Date) {
        self.code = code
        self.message = message
        self.handler = handler
        self.failedAt = failedAt
    }
}

/// A parked key as ``DedupeTransaction/parkedKeys(group:topic:)`` lists it.
public struct ParkedKey: Sendable, Hashable {
    /// The topic whose records of this key are parked.
    public var topic: String
    /// The key.
    public var key: ParkingKey
    /// The partition of the record that parked it.
    public var partition: Int32
    /// How many records its sequence holds.
    public var records: Int
    /// The offset of its head record (the oldest), in ``partition``.
    public var oldestOffset: Offset?
    /// When it was parked: the first failure.
    public var parkedAt: Date
    /// The failure that parked it, or that its last release met.
    public var failure: ParkingFailure
    /// Who is releasing it right now, if anyone (``DedupeTransaction/claimParkedKey(group:topic:key:claimant:at:staleBefore:)``).
    public var releaseClaim: String?

    /// A parked key as a store lists it.
    public init(
        topic: String, key: ParkingKey, partition: Int32, records: Int, oldestOffset: Offset?, parkedAt: Date,
        failure: ParkingFailure, releaseClaim: String? = nil
    ) {
        self.topic = topic
        self.key = key
        self.partition = partition
        self.records = records
        self.oldestOffset = oldestOffset
        self.parkedAt = parkedAt
        self.failure = failure
        self.releaseClaim = releaseClaim
    }
}

/// One record of a parked key's sequence.
public struct ParkedRecord: Sendable, Hashable {
    /// The record, all of its bytes as it was read.
    public var record: Record
    /// When it was parked.
    public var parkedAt: Date

    /// `record`, parked at `parkedAt`.
    public init(record: Record, parkedAt: Date) {
        self.record = record
        self.parkedAt = parkedAt
    }
}

/// What a claim on a parked key for a release found
/// (``DedupeTransaction/claimParkedKey(group:topic:key:claimant:at:staleBefore:)``).
public enum ParkingClaim: Sendable, Hashable {
    /// The claimant holds it now.
    case claimed
    /// Another release holds it, since this time.
    case heldBy(String, since: Date)
    /// The key is not parked.
    case notParked
}

/// What ``EventPipeline/releaseParked(topic:key:claimant:claimTimeout:)`` did.
public struct ParkedRelease: Sendable, Hashable {
    /// A record of the sequence that failed again: the key stays parked from it.
    public struct Failure: Sendable, Hashable {
        /// Its partition.
        public var partition: Int32
        /// Its offset.
        public var offset: Offset
        /// Why it failed.
        public var reason: DeadLetterReason
    }

    /// The topic.
    public var topic: String
    /// The key.
    public var key: ParkingKey
    /// Records whose handlers ran and committed.
    public var handled = 0
    /// Records whose events had been processed before.
    public var duplicates = 0
    /// Records skipped by policy (no handler, an unknown type when skipping).
    public var skipped = 0
    /// The record that failed again, if one did.
    public var failure: Failure?
    /// Whether the release was stopped (a signal) before the sequence ended.
    public var interrupted = false
    /// Records still parked when the release ended (0: the key is released).
    public var remaining = 0

    /// Nothing released yet.
    public init(topic: String, key: ParkingKey) {
        self.topic = topic
        self.key = key
    }

    /// Whether the key was released (its whole sequence ran).
    public var isReleased: Bool { failure == nil && !interrupted && remaining == 0 }

    mutating func count(_ outcome: RecordOutcome) {
        switch outcome {
        case .handled: handled += 1
        case .duplicate: duplicates += 1
        default: skipped += 1
        }
    }
}

extension SluiceError.Code {
    /// The record's key is parked (a replay that respects parking skipped it).
    public static let keyParked: Self = "KEY_PARKED"
    /// The key asked for is not parked.
    public static let keyNotParked: Self = "KEY_NOT_PARKED"
    /// Another process is releasing the key right now.
    public static let parkedReleaseInProgress: Self = "PARKED_RELEASE_IN_PROGRESS"
    /// The store does not implement parking (a custom ``DedupeStore`` without it).
    public static let parkingUnsupported: Self = "PARKING_UNSUPPORTED"
}

extension DedupeTransaction {
    static func parkingUnsupported() -> SluiceError {
        SluiceError(
            code: .parkingUnsupported,
            message: "the store \(Self.self) does not implement parking; use --on-poison dead-letter or a store that does")
    }

    public func parkedKeys(group: String, topic: String, among keys: [ParkingKey]) async throws -> Set<ParkingKey> {
        throw Self.parkingUnsupported()
    }

    public func park(_ record: Record, key: ParkingKey, group: String, failure: ParkingFailure) async throws {
        throw Self.parkingUnsupported()
    }

    public func appendParked(_ record: Record, key: ParkingKey, group: String, at time: Date) async throws {
        throw Self.parkingUnsupported()
    }

    public func parkedKeys(group: String, topic: String?) async throws -> [ParkedKey] {
        throw Self.parkingUnsupported()
    }

    public func parkedRecords(group: String, topic: String, key: ParkingKey, limit: Int?) async throws -> [ParkedRecord] {
        throw Self.parkingUnsupported()
    }

    public func removeParked(group: String, topic: String, key: ParkingKey, partition: Int32, offset: Offset) async throws -> Int {
        throw Self.parkingUnsupported()
    }

    public func claimParkedKey(
        group: String, topic: String, key: ParkingKey, claimant: String, at time: Date, staleBefore: Date
    ) async throws -> ParkingClaim {
        throw Self.parkingUnsupported()
    }

    public func releaseFailed(group: String, topic: String, key: ParkingKey, claimant: String, failure: ParkingFailure?) async throws {
        throw Self.parkingUnsupported()
    }

    public func discardParked(group: String, topic: String, key: ParkingKey, by actor: String, at time: Date) async throws -> Int {
        throw Self.parkingUnsupported()
    }
}
