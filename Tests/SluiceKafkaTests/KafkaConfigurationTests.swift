import Foundation
import InMemoryLogging
import Logging
import Sluice
import SluiceKafka
import Testing

@Suite("Kafka configuration: pass-through properties, unknown names, secrets", .serialized)
struct KafkaConfigurationTests {
    typealias Support = KafkaTestSupport

    @Test("An unknown property fails at start with its name in the error, and never its value")
    func unknownProperty() throws {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: ["127.0.0.1:9"], groupID: "g")
        configuration.properties["sasl.pasword"] = "hunter2-typo"
        let error = #expect(throws: KafkaError.self) {
            try KafkaConsumer(configuration: configuration, logger: Support.logger)
        }
        #expect(error?.code == .unknownProperty)
        #expect(error?.property == "sasl.pasword")
        #expect(error?.message.contains("sasl.pasword") == true)
        #expect(error.map { "\($0)" }?.contains("hunter2-typo") == false)

        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: ["127.0.0.1:9"])
        producerConfiguration.properties["linger.msec"] = "5"
        let producerError = #expect(throws: KafkaError.self) {
            try KafkaProducer(configuration: producerConfiguration, logger: Support.logger)
        }
        #expect(producerError?.property == "linger.msec")
    }

    @Test("Raw librdkafka properties pass through and win over typed fields")
    func passThrough() async throws {
        let cluster = try Support.cluster(topics: ["pass": 1])
        var configuration = Support.consumerConfiguration(cluster, group: nil)
        configuration.maxBatchSize = 1
        configuration.properties["client.id"] = "custom-client"
        configuration.properties["fetch.wait.max.ms"] = "10"
        #expect(configuration.description.contains("client.id=custom-client"))
        let invalid = #expect(throws: KafkaError.self) {
            var broken = configuration
            broken.properties["fetch.wait.max.ms"] = "not-a-number"
            return try KafkaConsumer(configuration: broken, logger: Support.logger)
        }
        #expect(invalid?.code == .invalidProperty)
        #expect(invalid?.property == "fetch.wait.max.ms")
        _ = try KafkaConsumer(configuration: configuration, logger: Support.logger)
    }

    @Test("A secret property's value is absent from every log line, error text and description")
    func secretsNeverShow() async throws {
        let secret = "Sup3r-S3cret-Value"
        let logs = InMemoryLogHandler()
        var logger = Logger(label: "secrets") { _ in logs }
        logger.logLevel = .trace
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: logger)
        try cluster.createTopic("secrets", partitions: 1)

        var configuration = KafkaConsumerConfiguration(bootstrapServers: [cluster.bootstrapServers], groupID: "secrets")
        configuration.properties["security.protocol"] = "SASL_PLAINTEXT"
        configuration.properties["sasl.mechanisms"] = "PLAIN"
        configuration.properties["sasl.username"] = "svc-billing"
        configuration.properties["sasl.password"] = secret
        configuration.properties["ssl.key.password"] = secret + "-key"
        // Every debug context, including the configuration dump librdkafka writes at start.
        configuration.properties["debug"] = "all"
        #expect(!configuration.description.contains(secret))
        #expect(configuration.description.contains("sasl.password=[REDACTED]"))

        let consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        try await consumer.subscribe(["secrets"])
        // Let it try to connect and authenticate for a while; the mock broker has no SASL.
        _ = try? await KafkaTestSupport.collect(from: consumer, timeout: .seconds(3)) { _ in false }
        try await consumer.close()

        // An error whose librdkafka text quotes the value: the secret also used where it is invalid.
        var quoting = configuration
        quoting.properties["security.protocol"] = secret
        let error = #expect(throws: KafkaError.self) { try KafkaConsumer(configuration: quoting, logger: logger) }
        #expect(error?.code == .invalidProperty)
        #expect(error.map { "\($0)" }?.contains(secret) == false)
        #expect(error?.message.contains("[REDACTED]") == true)

        let entries = logs.entries
        #expect(entries.count > 50, "debug logging reached the handler")
        for entry in entries {
            let text = "\(entry.message) \(entry.metadata)"
            #expect(!text.contains(secret), "leaked in: \(text)")
        }
    }

    @Test("A librdkafka older than 2.0 is refused with a clear error; the loaded one is accepted")
    func libraryVersion() throws {
        let error = #expect(throws: KafkaError.self) { try KafkaLibrary.checkVersion(0x0109_02FF, named: "1.9.2") }
        #expect(error?.code == .librdkafkaTooOld)
        #expect(error?.message.contains("1.9.2") == true)
        #expect(error?.message.contains("2.0.0") == true)
        try KafkaLibrary.checkVersion(0x0200_02FF, named: "2.0.2")
        #expect(KafkaLibrary.version.hasPrefix("2."))
    }

    /// The factories take names and numbers from librdkafka (`rd_kafka_err2name`), so a code typed
    /// by hand can no longer pair one librdkafka name with another's number.
    @Test("KafkaError factories carry librdkafka's own names and numbers")
    func errorFactories() {
        let expected: [(KafkaError, String, Int32)] = [
            (.invalidArgument("x"), "_INVALID_ARG", -186),
            (.unknownGroup("x"), "_UNKNOWN_GROUP", -179),
            (.timedOut("x"), "_TIMED_OUT", -185),
            (.conflict("x"), "_CONFLICT", -173),
            (.failure("x"), "_FAIL", -196),
            (.clientClosed("x"), "CLIENT_CLOSED", -172),
            (.cancelledWhileQueueFull("x"), "CANCELLED", -184),
        ]
        for (error, code, number) in expected {
            #expect(error.code.rawValue == code)
            #expect(error.number == number, "\(code)")
            #expect(error.message == "x")
        }
        #expect(KafkaError.timedOut("x").isRetriable)
        #expect(!KafkaError.invalidArgument("x").isRetriable)
    }
}
