import Foundation
import Logging
import Metrics
import Sluice
import SluiceKafka
import Synchronization

/// Envelopes, schemas and a running EventConsumer for the pipeline tests.
enum PipelineTestSupport {
    static let itemAddedSchema = #"""
        {"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
         "required":["key","seq"],
         "properties":{"key":{"type":"string"},"seq":{"type":"integer","minimum":0},"fail":{"enum":["fatal","always","twice"]}}}
        """#

    static func registry() throws -> SchemaRegistry {
        var registry = SchemaRegistry()
        try registry.register(eventType: "orders.item_added", version: 1, schemaText: itemAddedSchema)
        return registry
    }

    static func envelope(
        id: String, type: String = "orders.item_added", version: Int = 1, data: String,
        causation: String? = nil, extra: String = ""
    ) -> [UInt8] {
        let causation = causation ?? "cause-" + id
        let text = #"{"event_id":"\#(id)","event_type":"\#(type)","schema_version":\#(version),"occurred_at":"2026-11-22T10:00:00Z","producer":"tests","correlation_id":"corr-\#(id)","causation_id":"\#(causation)","subject":"order:\#(id)","data":\#(data)\#(extra)}"#
        return Array(text.utf8)
    }

    struct Item: Decodable, Sendable {
        var key: String
        var seq: Int
        var fail: String?
    }

    /// Starts an EventConsumer in a task; `stop()` cancels it and waits for its shutdown.
    final class Running<Store: DedupeStore>: Sendable {
        let service: EventConsumer<Store>
        let task: Task<Void, any Error>

        init(_ service: EventConsumer<Store>) {
            self.service = service
            self.task = Task { try await service.run() }
        }

        func stop() async throws {
            task.cancel()
            try await task.value
        }
    }

    static func consumer<Store: DedupeStore>(
        cluster: EmbeddedKafkaCluster, group: String, topics: [String], store: Store,
        router: EventRouter<Store.Transaction>, deadLetterProducer: KafkaProducer,
        logger: Logger = KafkaTestSupport.logger, metricsFactory: any MetricsFactory = MetricsSystem.factory,
        configure: (inout EventConsumer<Store>.Configuration) -> Void = { _ in }
    ) throws -> EventConsumer<Store> {
        var configuration = EventConsumer<Store>.Configuration(
            consumer: KafkaTestSupport.consumerConfiguration(cluster, group: group), topics: topics)
        configuration.commitInterval = .milliseconds(200)
        configuration.pipeline.retry.initialDelay = .milliseconds(10)
        configuration.pipeline.retry.maxAttempts = 3
        configure(&configuration)
        let registry = try registry()
        return try EventConsumer(
            configuration: configuration,
            decoder: EnvelopeDecoder(registry: registry, limits: EnvelopeLimits(maxValueBytes: 64 << 10)),
            upcasters: try UpcasterChain(registry: registry), router: router, store: store,
            deadLetterSink: KafkaDeadLetterSink(producer: deadLetterProducer), logger: logger, metricsFactory: metricsFactory)
    }
}
