import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Sluice

/// The HTTP endpoint an orchestrator and a monitoring stack watch a Sluice service through
/// (`run --http-address HOST:PORT`): a `Service` to run in the service's `ServiceGroup`.
///
/// Routes:
/// - `GET /health/live`: 200 while the service's tasks run, 503 once they have stopped.
/// - `GET /health/ready`: 200 with `{"status":"ready","reasons":[]}` when the source reports no
///   problem; otherwise 503 with `{"status":"not ready","reasons":[…]}`, one line per problem.
/// - `GET /metrics`: ``PrometheusMetrics/exposition()``, in the Prometheus text format.
/// - `GET /partitions`: the source's ``OperationsStatusSource/partitions()`` as JSON.
///
/// Every answer is computed when asked: the endpoint adds nothing to the path of a record.
///
/// - Important: Put it before the consumer in the `ServiceGroup`'s list: a group shuts its
///   services down in reverse order, so the endpoint keeps answering (ready: 503 "shutting
///   down") while the consumer drains.
public struct OperationsEndpoint<Source: OperationsStatusSource>: Service {
    private let address: HTTPAddress
    private let source: Source
    private let metrics: PrometheusMetrics
    private let logger: Logger
    private let onListening: @Sendable (HTTPAddress) async -> Void

    /// An endpoint on `address` answering from `source`, with `metrics` as `/metrics`.
    ///
    /// - Parameters:
    ///   - address: Where to listen; port 0 takes any free port.
    ///   - source: What the routes report.
    ///   - metrics: The registry `/metrics` shows; the service's metrics factory must feed it.
    ///   - logger: Where the endpoint logs (`operations endpoint listening`, with `http.address`).
    ///   - onListening: Called once the address is bound, with the port bound (the one chosen
    ///     for port 0).
    public init(
        address: HTTPAddress, source: Source, metrics: PrometheusMetrics, logger: Logger,
        onListening: @escaping @Sendable (HTTPAddress) async -> Void = { _ in }
    ) {
        self.address = address
        self.source = source
        self.metrics = metrics
        self.logger = logger
        self.onListening = onListening
    }

    /// Serves until graceful shutdown.
    ///
    /// - Throws: `SluiceError` with code `HTTP_ADDRESS_UNAVAILABLE` when the address cannot be
    ///   bound (the port is taken, the host is not this machine's).
    public func run() async throws {
        let application = Application(
            router: router(), configuration: ApplicationConfiguration(address: .hostname(address.host, port: address.port)),
            onServerRunning: { [logger, address, onListening] channel in
                let bound = HTTPAddress(host: address.host, port: channel.localAddress?.port ?? address.port)
                logger.notice("operations endpoint listening", metadata: ["http.address": "\(bound)"])
                await onListening(bound)
            },
            logger: logger)
        do {
            try await application.run()
        } catch let error as IOError {
            throw SluiceError(
                code: .httpAddressUnavailable,
                message: "cannot listen on \(address): \(Self.reason(error))", underlying: error)
        } catch let error as SocketAddressError {
            throw SluiceError(
                code: .httpAddressUnavailable, message: "cannot listen on \(address): \(error)", underlying: error)
        }
    }

    private static func reason(_ error: IOError) -> String {
        switch error.errnoCode {
        case EADDRINUSE: "the port is in use by another process"
        case EADDRNOTAVAIL: "the host is not an address of this machine"
        case EACCES: "permission denied (ports below 1024 need privileges)"
        default: "\(error)"
        }
    }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        let source = self.source
        let metrics = self.metrics
        router.get("health/live") { _, _ -> Response in
            let live = await source.isLive()
            return Self.json(live ? .ok : .serviceUnavailable, Readiness(status: live ? "live" : "stopped", reasons: []))
        }
        router.get("health/ready") { _, _ -> Response in
            let problems = await source.readinessProblems()
            return Self.json(
                problems.isEmpty ? .ok : .serviceUnavailable,
                Readiness(status: problems.isEmpty ? "ready" : "not ready", reasons: problems))
        }
        router.get("metrics") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.exposition())))
        }
        router.get("partitions") { _, _ -> Response in
            Self.json(.ok, await source.partitions())
        }
        return router
    }

    private struct Readiness: Encodable {
        var status: String
        var reasons: [String]
    }

    private static func json(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            var data = try encoder.encode(value)
            data.append(0x0A)
            return Response(
                status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
        } catch {
            return Response(
                status: .internalServerError, headers: [.contentType: "text/plain; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: "cannot encode the answer: \(error)\n")))
        }
    }
}
