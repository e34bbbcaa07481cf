/// Facts about the librdkafka this process loaded.
public enum KafkaLibrary {
    /// The loaded librdkafka's version, e.g. `2.0.2`.
    public static var version: String { RDKafkaClient.libraryVersion }
}
