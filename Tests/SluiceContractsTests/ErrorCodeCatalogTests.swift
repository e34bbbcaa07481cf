import Foundation
import Testing

/// The error codes article (`SluiceContracts.docc/ErrorCodes.md`) is the one place that lists
/// every code Sluice emits; this keeps it true. A code added to the sources without a row, or a
/// row for a code no source emits, fails here.
@Suite("The error code catalog lists exactly the codes the sources emit")
struct ErrorCodeCatalogTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Codes in the sources: `SluiceError.Code` constants (`static let x: Self = "CODE"`) and
    /// codes written where an error is raised (`SluiceError(code: "CODE", …)`).
    static func emittedCodes() throws -> [String: String] {
        let sources = root.appendingPathComponent("Sources")
        let files = try #require(FileManager.default.enumerator(atPath: sources.path))
            .compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
        let constant = try Regex(#"static let \w+: Self = "([A-Z0-9_]+)""#)
        let literal = try Regex(#"SluiceError\(\s*code: "([A-Z0-9_]+)""#)
        var codes: [String: String] = [:]
        for file in files {
            let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
            for pattern in [constant, literal] {
                for match in text.matches(of: pattern) {
                    if let code = match.output[1].substring { codes[String(code), default: file] = file }
                }
            }
        }
        return codes
    }

    /// Codes in the article: the first column of its table, in backticks.
    static func catalogedCodes() throws -> [String] {
        let article = root.appendingPathComponent("Sources/SluiceContracts/SluiceContracts.docc/ErrorCodes.md")
        let text = try String(contentsOf: article, encoding: .utf8)
        let row = try Regex(#"^\| `([A-Z0-9_]+)` \|"#).anchorsMatchLineEndings()
        return text.matches(of: row).compactMap { $0.output[1].substring.map(String.init) }
    }

    @Test("Every emitted code has one row, and every row is a code that is emitted")
    func catalogMatchesSources() throws {
        let emitted = try Self.emittedCodes()
        let cataloged = try Self.catalogedCodes()
        #expect(emitted.count > 25, "the sources were not found under \(Self.root.path)")
        #expect(Set(cataloged).count == cataloged.count, "a code has two rows: \(cataloged)")
        let missing = Set(emitted.keys).subtracting(cataloged)
        let stale = Set(cataloged).subtracting(emitted.keys)
        #expect(missing.isEmpty, "emitted but not in ErrorCodes.md: \(missing.sorted().map { "\($0) (\(emitted[$0] ?? ""))" })")
        #expect(stale.isEmpty, "in ErrorCodes.md but emitted nowhere: \(stale.sorted())")
    }
}
