// swift-tools-version:6.1

import PackageDescription

/// Settings every Swift target shares: Swift 6 language mode with complete concurrency checking
/// (the default in Swift 6 mode), plus the upcoming features CONTRIBUTING.md asks for.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Sluice",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SluiceContracts", targets: ["SluiceContracts"]),
        .library(name: "Sluice", targets: ["Sluice"]),
        .library(name: "SluiceKafka", targets: ["SluiceKafka"]),
        .library(name: "SluiceSQLite", targets: ["SluiceSQLite"]),
        .library(name: "SluicePostgres", targets: ["SluicePostgres"]),
        .library(name: "SluiceDatabase", targets: ["SluiceDatabase"]),
        .library(name: "SluiceTesting", targets: ["SluiceTesting"]),
        .library(name: "SluiceKafkaTesting", targets: ["SluiceKafkaTesting"]),
        .library(name: "SluiceHTTP", targets: ["SluiceHTTP"]),
        .library(name: "SluiceCLI", targets: ["SluiceCLI"]),
        .executable(name: "sluice", targets: ["sluice"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CRDKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        // The event contract: JSON, JSON Schema, the envelope, RFC 3339, the compatibility gate and
        // the snapshot format. Foundation only (a test checks the imports), so the fuzz target and
        // tools build from it and nothing can slip a logger or a Kafka type into it.
        .target(
            name: "SluiceContracts",
            swiftSettings: strictSettings
        ),
        .target(
            name: "Sluice",
            dependencies: [
                "SluiceContracts",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SluiceKafka",
            dependencies: [
                "Sluice",
                "CRDKafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SluiceSQLite",
            dependencies: [
                "Sluice",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SluicePostgres",
            dependencies: [
                "Sluice",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // What `--database` opens: SQLite or PostgreSQL behind one store type, for the commands, for
        // services and for tests that need a store without the command line.
        .target(
            name: "SluiceDatabase",
            dependencies: [
                "Sluice",
                "SluiceSQLite",
                "SluicePostgres",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Test pieces that need no broker: the staging replay harness and a recording dead-letter sink.
        .target(
            name: "SluiceTesting",
            dependencies: [
                "Sluice",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Test pieces on the embedded broker (EmbeddedBrokerFixture).
        .target(
            name: "SluiceKafkaTesting",
            dependencies: [
                "Sluice",
                "SluiceKafka",
                "SluiceTesting",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // The operations endpoint (`--http-address`): health, readiness, Prometheus metrics and
        // partition status over HTTP, on Hummingbird.
        .target(
            name: "SluiceHTTP",
            dependencies: [
                "Sluice",
                "SluiceKafka",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SluiceCLI",
            dependencies: [
                "Sluice",
                "SluiceKafka",
                "SluiceDatabase",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                "SluiceHTTP",
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "sluice",
            dependencies: [
                "Sluice",
                "SluiceKafka",
                "SluiceCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // The envelope decoder's fuzz target (libFuzzer), built from SluiceContracts alone by
        // Fuzz/run-envelope-fuzz.sh with -sanitize=fuzzer and SLUICE_FUZZING (its main hands over to
        // libFuzzer's driver); in an ordinary build it replays seed and crash files through the same
        // invariant checks.
        .target(name: "CLibFuzzer", path: "Fuzz/CLibFuzzer"),
        .executableTarget(
            name: "sluice-envelope-fuzz",
            dependencies: ["SluiceContracts", "CLibFuzzer"],
            path: "Fuzz/EnvelopeDecoderFuzz",
            exclude: ["seeds"],
            swiftSettings: strictSettings
        ),
        // A raw librdkafka consume loop written in C: the baseline the SluiceKafka consumer is
        // measured against in `sluice-benchmarks`.
        .target(
            name: "CRawConsumeLoop",
            dependencies: ["CRDKafka"],
            path: "Benchmarks/CRawConsumeLoop"
        ),
        .executableTarget(
            name: "sluice-benchmarks",
            dependencies: [
                "Sluice",
                "SluiceKafka",
                "SluiceCLI",
                "SluiceSQLite",
                "OrderFulfillment",
                "CRawConsumeLoop",
                "SluicePostgres",
                "SluiceDatabase",
                "SluiceHTTP",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Benchmarks/SluiceBenchmarks",
            swiftSettings: strictSettings
        ),
        // The quick tour run by the README's demo command (grows into Examples/OrderFulfillment).
        .executableTarget(
            name: "sluice-quick-tour",
            dependencies: [
                "Sluice",
                "SluiceKafka",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/QuickTour",
            swiftSettings: strictSettings
        ),
        // The example service (Examples/OrderFulfillment): its handlers as a library its tests import,
        // and its executable mounting `run` and `replay`.
        .target(
            name: "OrderFulfillment",
            dependencies: [
                "Sluice",
                "SluiceCLI",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/OrderFulfillment/Sources/OrderFulfillment",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "order-fulfillment",
            dependencies: [
                "OrderFulfillment",
                "Sluice",
                "SluiceCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/OrderFulfillment/Sources/order-fulfillment",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "OrderFulfillmentTests",
            dependencies: [
                "OrderFulfillment",
                "Sluice",
                "SluiceCLI",
                "SluiceTesting",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/OrderFulfillment/Tests/OrderFulfillmentTests",
            swiftSettings: strictSettings
        ),
        // README.md's Swift samples, compiled (ReadmeSampleTests checks they match the README).
        .target(
            name: "ReadmeSamples",
            dependencies: [
                "Sluice",
                "SluiceKafka",
                "SluiceCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/ReadmeSamples/Library",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "readme-payments",
            dependencies: [
                "Sluice",
                "SluiceCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tests/ReadmeSamples/Command",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ReadmeSampleTests",
            dependencies: [
                "ReadmeSamples",
                "readme-payments",
                "Sluice",
                "SluiceCLI",
                "SluiceTesting",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/ReadmeSampleTests",
            swiftSettings: strictSettings
        ),
        // What the test services below share (their O_APPEND ledger).
        .target(
            name: "SluiceTestServiceSupport",
            path: "Tests/Support/ServiceSupport",
            swiftSettings: strictSettings
        ),
        // A consumer service the tests start as a separate process, to kill it.
        .executableTarget(
            name: "sluice-test-consumer",
            dependencies: [
                "Sluice",
                "SluiceTestServiceSupport",
                "SluiceCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/Support/TestConsumer",
            swiftSettings: strictSettings
        ),
        // The exactly-once tests' consumer: balances in SQLite or PostgreSQL, killed at will.
        .executableTarget(
            name: "sluice-test-balance-consumer",
            dependencies: [
                "Sluice",
                "SluiceTestServiceSupport",
                "SluiceCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/Support/BalanceConsumer",
            swiftSettings: strictSettings
        ),
        // Fixtures of the envelope and schema tests (temporary directories, envelopes built from
        // fields, the project's EventSchemas), shared by the contract and CLI tests.
        .target(
            name: "SluiceTestFixtures",
            dependencies: ["SluiceContracts"],
            path: "Tests/Support/Fixtures",
            swiftSettings: strictSettings
        ),
        // The event contract's tests, with the official JSON Schema Test Suite as a resource.
        .testTarget(
            name: "SluiceContractsTests",
            dependencies: ["SluiceContracts", "SluiceTestFixtures"],
            // The differential test's referee is run by python3 from the source tree, not bundled.
            exclude: ["Differential"],
            resources: [.copy("Resources/JSONSchemaTestSuite")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SluiceTests",
            dependencies: [
                "Sluice",
                "SluiceTesting",
                "SluiceTestFixtures",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strictSettings
        ),
        // The dedupe stores' shared conformance checks, run against a real PostgreSQL (and SQLite).
        .testTarget(
            name: "SluiceStoreTests",
            dependencies: [
                "SluiceTestServiceSupport",
                "Sluice",
                "SluiceDatabase",
                "SluiceTesting",
                "SluiceSQLite",
                "SluicePostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SluiceKafkaTests",
            dependencies: [
                "SluiceTestServiceSupport",
                "Sluice",
                "SluiceKafka",
                "SluiceTesting",
                "SluiceKafkaTesting",
                "SluiceSQLite",
                "SluiceCLI",
                "SluiceHTTP",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)
