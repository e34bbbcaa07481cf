import CoreMetrics
import Prometheus

/// The `sluice.*` metrics of one service in the Prometheus text format, for `GET /metrics`.
///
/// It owns its registry: pass ``factory`` to the service (`EventConsumer`'s and `EventPipeline`'s
/// `metricsFactory:`) instead of bootstrapping the process-wide `MetricsSystem`, so a process
/// (a test) can run several services, each with its own page, and a service that bootstrapped
/// its own metrics backend keeps it (see ``factory(alongside:)``).
///
/// Names follow Prometheus conventions (``prometheusName(_:kind:)``): `sluice.records.handled`
/// is the counter `sluice_records_handled_total`, the timer `sluice.handler.duration` the
/// histogram `sluice_handler_duration_seconds`; dimensions (`topic`, `partition`, `code`,
/// `handler`) are labels.
public final class PrometheusMetrics: Sendable {
    /// Where the metrics are kept until scraped.
    public let registry: PrometheusCollectorRegistry
    /// Makes metrics in ``registry`` under Prometheus names.
    public let factory: any MetricsFactory

    /// An empty registry.
    public init() {
        let registry = PrometheusCollectorRegistry()
        var prometheus = PrometheusMetricsFactory(registry: registry)
        prometheus.nameAndLabelSanitizer = { name, labels in
            (name, labels.map { (Self.sanitized($0.0, allowColon: false), $0.1) })
        }
        self.registry = registry
        self.factory = NamingFactory(base: prometheus)
    }

    /// A factory that feeds both ``registry`` and `other` (the process's bootstrapped factory,
    /// when it has one): the service's metrics reach its own backend and `/metrics` alike.
    public func factory(alongside other: any MetricsFactory) -> any MetricsFactory {
        other is NOOPMetricsHandler ? factory : MultiplexMetricsHandler(factories: [factory, other])
    }

    /// The page `GET /metrics` answers: every metric in the text exposition format 0.0.4.
    public func exposition() -> String {
        registry.emitToString()
    }

    /// The kind of a swift-metrics instrument, which decides its Prometheus suffix.
    public enum Kind: Sendable {
        /// A counter: `_total`.
        case counter
        /// A gauge or a recorder: no suffix.
        case gauge
        /// A timer, a histogram of seconds: `_seconds`.
        case timer
    }

    /// The Prometheus name of a swift-metrics label: characters other than letters, digits, `_`
    /// and `:` become `_` (so `sluice.records.handled` becomes `sluice_records_handled`), a
    /// leading digit gets a `_` before it, and the kind's suffix is added unless already there.
    public static func prometheusName(_ label: String, kind: Kind) -> String {
        let name = sanitized(label, allowColon: true)
        let suffix: String
        switch kind {
        case .counter: suffix = "_total"
        case .gauge: suffix = ""
        case .timer: suffix = "_seconds"
        }
        return name.hasSuffix(suffix) ? name : name + suffix
    }

    static func sanitized(_ text: String, allowColon: Bool) -> String {
        var result = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            let allowed = (scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)))
                || scalar == "_" || (allowColon && scalar == ":")
            result.append(allowed ? scalar : "_")
        }
        if let first = result.first, ("0"..."9").contains(first) { result.insert("_", at: result.startIndex) }
        return result.isEmpty ? "_" : String(result)
    }
}

/// Gives each instrument its Prometheus name by kind (the registry's own sanitizer sees names
/// without knowing whether they are counters), then hands it to the Prometheus factory.
private struct NamingFactory: MetricsFactory {
    let base: PrometheusMetricsFactory

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        base.makeCounter(label: PrometheusMetrics.prometheusName(label, kind: .counter), dimensions: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        base.makeFloatingPointCounter(label: PrometheusMetrics.prometheusName(label, kind: .counter), dimensions: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        base.makeRecorder(label: PrometheusMetrics.prometheusName(label, kind: .gauge), dimensions: dimensions, aggregate: aggregate)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        base.makeMeter(label: PrometheusMetrics.prometheusName(label, kind: .gauge), dimensions: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        base.makeTimer(label: PrometheusMetrics.prometheusName(label, kind: .timer), dimensions: dimensions)
    }

    func destroyCounter(_ handler: any CounterHandler) { base.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { base.destroyFloatingPointCounter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { base.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { base.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) { base.destroyTimer(handler) }
}
