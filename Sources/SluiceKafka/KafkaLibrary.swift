import Dispatch

/// Facts about the librdkafka this process loaded, and process-wide checks.
public enum KafkaLibrary {
    /// The loaded librdkafka's version, e.g. `2.0.2`.
    public static var version: String { RDKafkaClient.libraryVersion }

    /// Throws ``KafkaError/Code/librdkafkaTooOld`` when a librdkafka with the given
    /// `RD_KAFKA_VERSION`-style number (`0xMMmmrrff`) is older than Sluice supports. Clients run
    /// this check on the loaded library when they are created.
    public static func checkVersion(_ version: Int32, named name: String) throws(KafkaError) {
        try RDKafkaClient.checkLibraryVersion(version, named: name)
    }

    /// Waits until every librdkafka client of this process (consumers, producers, admin clients,
    /// embedded clusters) has been destroyed, for at most `timeout`.
    ///
    /// Call it at the end of a process's shutdown (librdkafka recommends it) or in tests, to prove
    /// that no client outlives its owner.
    ///
    /// - Returns: `true` when none is left.
    public static func allClientsDestroyed(within timeout: Duration) async -> Bool {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: RDKafkaClient.waitForAllDestroyed(timeoutMilliseconds: Int32(clamping: timeout.milliseconds)))
            }
        }
    }
}
