import Foundation
import Testing

/// Every Swift sample in README.md is compiled: each one's lines appear, in order, in a source
/// file of the ReadmeSamples targets (which `swift build --build-tests` compiles), ignoring
/// indentation. A README edit that is not mirrored there fails this test.
@Suite("README samples compile")
struct ReadmeSamplesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func lines(_ text: String) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: true).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    @Test("Each ```swift block of README.md is in a compiled sample file")
    func samplesAreCompiled() throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let blocks = readme.components(separatedBy: "```swift\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        #expect(blocks.count >= 4)
        let directories = ["Tests/ReadmeSamples/Library", "Tests/ReadmeSamples/Command", "Tests/ReadmeSampleTests"]
        var sources: [String: [String]] = [:]
        for directory in directories {
            let url = Self.root.appendingPathComponent(directory)
            for name in try FileManager.default.contentsOfDirectory(atPath: url.path) where name.hasSuffix(".swift") {
                sources[name] = Self.lines(try String(contentsOf: url.appendingPathComponent(name), encoding: .utf8))
            }
        }
        for block in blocks {
            let wanted = Self.lines(block)
            let found = sources.contains { _, source in
                var index = source.startIndex
                for line in wanted {
                    guard let match = source[index...].firstIndex(of: line) else { return false }
                    index = match + 1
                }
                return true
            }
            #expect(found, "README sample not found in Tests/ReadmeSamples (update both): \(wanted.prefix(3).joined(separator: " / "))…")
        }
    }
}
