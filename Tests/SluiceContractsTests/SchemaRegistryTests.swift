import Foundation
import SluiceContracts
import SluiceTestFixtures
import Testing

@Suite("Schema registry")
struct SchemaRegistryTests {
    typealias Fixtures = EnvelopeTestFixtures

    static let objectSchema = #"{"type":"object","properties":{"id":{"type":"string"}}}"#

    /// Loads a registry from a temporary directory holding `files`; returns the error, if any.
    func load(_ files: [String: String]) throws -> Result<SchemaRegistry, SluiceError> {
        let directory = try Fixtures.makeTemporaryDirectory()
        defer { Fixtures.removeDirectory(directory) }
        for (path, text) in files { try Fixtures.write(text, to: path, in: directory) }
        do throws(SluiceError) {
            return .success(try SchemaRegistry(directory: directory))
        } catch {
            return .failure(error)
        }
    }

    func refusal(_ files: [String: String]) throws -> SluiceError {
        switch try load(files) {
        case .success:
            Issue.record("the registry loaded but should have been refused")
            return SluiceError(code: "NONE", message: "")
        case .failure(let error):
            #expect(!error.isRetriable)
            return error
        }
    }

    @Test("the repository's EventSchemas load: types, versions, newest versions")
    func repositorySchemas() throws {
        let registry = try Fixtures.registry()
        #expect(registry.eventTypes.contains("billing.payment_authorized"))
        #expect(registry.eventTypes.contains("orders.order_placed"))
        #expect(registry.eventTypes.contains("inventory.stock_reserved"))
        #expect(registry.versions(of: "billing.payment_authorized") == [1, 2])
        #expect(registry.newestVersion(of: "billing.payment_authorized") == 2)
        #expect(registry.newestVersions["orders.order_placed"] == 1)
        #expect(registry.newestVersion(of: "nothing.happened") == nil)
        let entry = try registry.entry(for: "billing.payment_authorized", version: 2)
        #expect(entry.source.hasSuffix("billing.payment_authorized/v2.schema.json"))
    }

    @Test("lookups: unknown type is EVENT_TYPE_UNKNOWN, unknown version SCHEMA_VERSION_UNSUPPORTED")
    func lookups() throws {
        let registry = try Fixtures.registry()
        #expect(throws: Never.self) { try registry.schema(for: "billing.payment_authorized", version: 1) }
        do throws(SluiceError) {
            _ = try registry.schema(for: "billing.refund_issued", version: 1)
            Issue.record("expected EVENT_TYPE_UNKNOWN")
        } catch {
            #expect(error.code == .eventTypeUnknown)
            #expect(error.path == "/event_type")
        }
        do throws(SluiceError) {
            _ = try registry.schema(for: "billing.payment_authorized", version: 3)
            Issue.record("expected SCHEMA_VERSION_UNSUPPORTED")
        } catch {
            #expect(error.code == .schemaVersionUnsupported)
            #expect(error.path == "/schema_version")
        }
    }

    @Test("a registry can be built in code; duplicates are refused")
    func builtInCode() throws {
        var registry = SchemaRegistry()
        let document = try JSONParser.parse(Self.objectSchema)
        try registry.register(eventType: "orders.order_shipped", version: 2, document: document)
        try registry.register(eventType: "orders.order_shipped", version: 1, document: document)
        #expect(registry.versions(of: "orders.order_shipped") == [1, 2])
        #expect(registry.newestVersion(of: "orders.order_shipped") == 2)
        #expect(throws: SluiceError.self) {
            try registry.register(eventType: "orders.order_shipped", version: 1, document: document)
        }
        #expect(throws: SluiceError.self) {
            try registry.register(eventType: "Orders.Shipped", version: 1, document: document)
        }
        #expect(throws: SluiceError.self) {
            try registry.register(eventType: "orders.order_shipped", version: 0, document: document)
        }
    }

    @Test("a valid directory loads, ignoring dotfiles and Markdown")
    func validDirectory() throws {
        let result = try load([
            "orders.order_shipped/v1.schema.json": Self.objectSchema,
            "orders.order_shipped/v2.schema.json": Self.objectSchema,
            "orders.order_shipped/.gitkeep": "",
            "README.md": "# schemas",
            ".DS_Store": "junk",
        ])
        let registry = try result.get()
        #expect(registry.versions(of: "orders.order_shipped") == [1, 2])
    }

    @Test("a file that is not JSON is refused with the file and the reason")
    func malformedFile() throws {
        let error = try refusal(["orders.order_shipped/v1.schema.json": #"{"type": "object""#])
        #expect(error.code == .schemaFileInvalid)
        #expect(error.message.contains("orders.order_shipped/v1.schema.json"))
        #expect(error.message.contains("not valid JSON"))
    }

    @Test("a schema file that is not an object is refused", arguments: ["true", "[]", "\"schema\"", "3"])
    func nonObjectSchema(_ text: String) throws {
        let error = try refusal(["orders.order_shipped/v1.schema.json": text])
        #expect(error.code == .schemaFileInvalid)
        #expect(error.message.contains("v1.schema.json"))
    }

    @Test("an unsupported keyword is refused with the validator's code and the file")
    func unsupportedKeyword() throws {
        let error = try refusal([
            "orders.order_shipped/v1.schema.json": ##"{"type":"object","$dynamicRef":"#meta"}"##
        ])
        #expect(error.code.rawValue == "SCHEMA_KEYWORD_UNSUPPORTED")
        #expect(error.message.contains("orders.order_shipped/v1.schema.json"))
    }

    @Test(
        "badly named files are refused",
        arguments: [
            "orders.order_shipped/v0.schema.json", "orders.order_shipped/v01.schema.json",
            "orders.order_shipped/1.schema.json", "orders.order_shipped/v1.json",
            "orders.order_shipped/V1.schema.json", "orders.order_shipped/v1.schema.json.bak",
            "orders.order_shipped/vx.schema.json",
        ])
    func badFileName(_ path: String) throws {
        let error = try refusal([path: Self.objectSchema])
        #expect(error.code == .schemaFileInvalid)
        #expect(error.message.contains("v<N>.schema.json"))
    }

    @Test(
        "badly named type directories are refused",
        arguments: ["Orders.OrderShipped", "orders", "orders.ship", "orders.order-shipped"])
    func badDirectoryName(_ name: String) throws {
        let error = try refusal(["\(name)/v1.schema.json": Self.objectSchema])
        #expect(error.code == .schemaFileInvalid)
        #expect(error.message.contains(name))
    }

    @Test("a file where a type directory belongs is refused")
    func strayFile() throws {
        let error = try refusal(["orders.order_shipped.json": Self.objectSchema])
        #expect(error.code == .schemaFileInvalid)
    }

    @Test("an empty type directory is refused")
    func emptyTypeDirectory() throws {
        let error = try refusal(["orders.order_shipped/.gitkeep": ""])
        #expect(error.code == .schemaFileInvalid)
        #expect(error.message.contains("no schema"))
    }

    @Test("a gap between versions is refused; versions may start above 1")
    func versionGap() throws {
        let error = try refusal([
            "orders.order_shipped/v1.schema.json": Self.objectSchema,
            "orders.order_shipped/v3.schema.json": Self.objectSchema,
        ])
        #expect(error.code == .schemaFileInvalid)
        #expect(error.message.contains("missing v2"))

        let retired = try load([
            "orders.order_shipped/v3.schema.json": Self.objectSchema,
            "orders.order_shipped/v4.schema.json": Self.objectSchema,
        ]).get()
        #expect(retired.versions(of: "orders.order_shipped") == [3, 4])
    }

    @Test("a directory that does not exist is refused")
    func missingDirectory() {
        #expect(throws: SluiceError.self) { try SchemaRegistry(directory: "/nonexistent/EventSchemas") }
    }
}
