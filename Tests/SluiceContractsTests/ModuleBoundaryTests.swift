import Foundation
import Testing

/// The event contract is a module the compiler keeps small: its sources may import Foundation and
/// nothing else, so no logger, metrics, Kafka or database type can slip into the envelope, the
/// schemas or the snapshot format (the fuzz target and tools build from it alone).
@Suite("SluiceContracts depends on Foundation only")
struct ModuleBoundaryTests {
    static let moduleDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/SluiceContracts")

    @Test("Every import in Sources/SluiceContracts is Foundation")
    func importsAreFoundationOnly() throws {
        let files = try #require(FileManager.default.enumerator(atPath: Self.moduleDirectory.path))
            .compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
        #expect(files.count > 30, "the module's sources were not found at \(Self.moduleDirectory.path)")
        var imports: [String: Set<String>] = [:]
        for file in files {
            let text = try String(contentsOf: Self.moduleDirectory.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
                let words = line.split(separator: " ")
                // `import X`, `@_exported import X`, `public import X`, `import struct X.Y`, …
                guard let index = words.firstIndex(of: "import"), index + 1 < words.count,
                    words[..<index].allSatisfy({ $0.hasPrefix("@") || ["public", "package", "internal", "private", "fileprivate"].contains($0) })
                else { continue }
                var module = words[index + 1]
                if ["struct", "class", "enum", "protocol", "func", "var", "let", "typealias"].contains(module), index + 2 < words.count {
                    module = words[index + 2]
                }
                let name = String(module.split(separator: ".").first ?? module)
                imports[name, default: []].insert(file)
            }
        }
        #expect(Set(imports.keys).subtracting(["Foundation"]).isEmpty, "imports beyond Foundation: \(imports.filter { $0.key != "Foundation" })")
    }
}
