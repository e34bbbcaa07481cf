import Foundation
import SluiceContracts

/// Fixtures for the envelope, schema, upcaster and snapshot tests.
public enum EnvelopeTestFixtures {
    /// The repository's `EventSchemas` directory, found from this file so tests need no Bundle.
    public static let eventSchemasDirectory: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("EventSchemas").path

    /// The registry loaded from the repository's `EventSchemas`.
    public static func registry() throws -> SchemaRegistry {
        try SchemaRegistry(directory: eventSchemasDirectory)
    }

    /// A valid `billing.payment_authorized` v1 envelope as a dictionary, to be broken by tests.
    public static func validFields() -> [String: Any] {
        [
            "event_id": "evt_01J9ZK3M7Q",
            "event_type": "billing.payment_authorized",
            "schema_version": 1,
            "occurred_at": "2025-01-31T12:00:00.123Z",
            "producer": "billing-service",
            "correlation_id": "corr-42",
            "causation_id": "cmd:order:7",
            "subject": "invoice:inv_456",
            "data": [
                "payment_id": "pay_8f3k2j1h0g",
                "order_id": "ord_7d6c5b4a3z",
                "amount_minor": 129900,
                "currency": "EUR",
                "authorized_at": "2025-01-31T12:00:00Z",
            ] as [String: Any],
        ]
    }

    /// The bytes of an envelope: the valid one with `changes` applied (`NSNull()` writes
    /// `null`; ``absent`` removes the field).
    public static func envelope(_ changes: [String: Any] = [:]) -> [UInt8] {
        var fields = validFields()
        for (name, value) in changes {
            if value is Absent { fields.removeValue(forKey: name) } else { fields[name] = value }
        }
        return json(fields)
    }

    /// The bytes of an envelope whose `data` is the valid one with `changes` applied.
    public static func envelope(data changes: [String: Any]) -> [UInt8] {
        var data = validFields()["data"] as? [String: Any] ?? [:]
        for (name, value) in changes {
            if value is Absent { data.removeValue(forKey: name) } else { data[name] = value }
        }
        return envelope(["data": data])
    }

    public static func json(_ object: Any) -> [UInt8] {
        do {
            return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
        } catch {
            preconditionFailure("test fixture is not serializable: \(error)")
        }
    }

    /// Marks a field to remove.
    public struct Absent: Sendable {}
    public static let absent = Absent()

    /// A fresh temporary directory, removed by the caller with ``removeDirectory(_:)``.
    public static func makeTemporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "sluice-envelope-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    public static func removeDirectory(_ path: String) {
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch {
            // A leftover temporary directory is harmless; the test result does not depend on it.
            print("could not remove \(path): \(error)")
        }
    }

    /// Writes `text` to `directory/relativePath`, creating intermediate directories.
    public static func write(_ text: String, to relativePath: String, in directory: String) throws {
        let url = URL(fileURLWithPath: directory).appendingPathComponent(relativePath)
        try FileManager.default.createDirectory(
            at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }
}
