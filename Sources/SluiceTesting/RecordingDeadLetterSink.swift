import Sluice
import Synchronization

/// A `DeadLetterSink` that keeps what it is sent, for tests: no broker needed.
public final class RecordingDeadLetterSink: DeadLetterSink {
    private let sent = Mutex<[DeadLetterRecord]>([])

    /// A sink that has recorded nothing yet.
    public init() {}

    public func send(_ record: DeadLetterRecord) async throws {
        sent.withLock { $0.append(record) }
    }

    /// Every dead letter, in the order they were sent.
    public var records: [DeadLetterRecord] { sent.withLock { $0 } }

    /// The `sluice.error.code` of every dead letter, in the order they were sent.
    public var codes: [String] { records.compactMap { $0.errorCode?.rawValue } }

    /// Forgets what was sent.
    public func removeAll() { sent.withLock { $0.removeAll() } }
}

extension DeadLetterRecord {
    /// The value of the last header called `name`, as text.
    public func header(_ name: String) -> String? {
        headers.last { $0.name == name }?.value.map { String(decoding: $0, as: UTF8.self) }
    }

    /// `sluice.error.code`.
    public var errorCode: SluiceError.Code? { header(DeadLetterHeader.errorCode).map(SluiceError.Code.init(rawValue:)) }
}
