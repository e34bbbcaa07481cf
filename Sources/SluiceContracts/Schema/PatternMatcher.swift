/// A compiled ECMA-262 regular expression for the common subset of `pattern` syntax, matched in
/// linear time.
///
/// Covers literals, `.`, classes (`[a-z]`, `[^…]`, `\d \w \s` and their negations), groups
/// (`(…)`, `(?:…)`), alternation, the quantifiers `* + ? {n} {n,} {n,m}` (greedy or lazy: for a
/// yes/no answer they match the same strings) and the anchors `^ $`, over Unicode code points.
/// Anything else (back-references, look-around, `\b`, `\p{…}`) makes ``init(_:)`` return `nil`
/// and ``SchemaPattern`` falls back to `NSRegularExpression`.
///
/// Matching simulates the automaton (a Pike VM without captures) instead of backtracking, so a
/// hostile instance string cannot trigger catastrophic backtracking: the cost is at most the
/// string's length times the program's size. It is also several times faster than the
/// Foundation engine on short strings, which is what payload fields are.
struct PatternMatcher: Sendable {
    private enum Instruction: Sendable {
        case match
        case consume(Int)
        case split(Int, Int)
        case jump(Int)
        case assertStart
        case assertEnd
    }

    /// A set of code points: a bitmap for ASCII, ranges above.
    struct ScalarClass: Sendable {
        var asciiLow: UInt64 = 0
        var asciiHigh: UInt64 = 0
        var ranges: [ClosedRange<UInt32>] = []
        var negated = false

        mutating func insert(_ range: ClosedRange<UInt32>) {
            var lower = range.lowerBound
            while lower <= range.upperBound && lower < 128 {
                if lower < 64 { asciiLow |= 1 << UInt64(lower) } else { asciiHigh |= 1 << UInt64(lower - 64) }
                lower += 1
            }
            if lower <= range.upperBound { ranges.append(lower...range.upperBound) }
        }

        mutating func insert(_ other: ScalarClass) {
            asciiLow |= other.asciiLow
            asciiHigh |= other.asciiHigh
            ranges += other.ranges
        }

        @inline(__always)
        func contains(_ value: UInt32) -> Bool {
            let found: Bool
            if value < 64 {
                found = asciiLow & (1 << UInt64(value)) != 0
            } else if value < 128 {
                found = asciiHigh & (1 << UInt64(value - 64)) != 0
            } else {
                found = ranges.contains { $0.contains(value) }
            }
            return found != negated
        }

        static func of(_ ranges: [ClosedRange<UInt32>], negated: Bool = false) -> ScalarClass {
            var set = ScalarClass()
            for range in ranges { set.insert(range) }
            set.negated = negated
            return set
        }

        static let digit = of([0x30...0x39])
        static let word = of([0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A])
        /// ECMA-262 WhiteSpace and LineTerminator.
        static let space = of([
            0x09...0x0D, 0x20...0x20, 0xA0...0xA0, 0x1680...0x1680, 0x2000...0x200A, 0x2028...0x2029,
            0x202F...0x202F, 0x205F...0x205F, 0x3000...0x3000, 0xFEFF...0xFEFF,
        ])
        /// `.`: anything but a line terminator.
        static let dot = of([0x0A...0x0A, 0x0D...0x0D, 0x2028...0x2029], negated: true)
    }

    private indirect enum Node {
        case empty
        case scalars(ScalarClass)
        case sequence([Node])
        case alternation([Node])
        case repetition(Node, min: Int, max: Int?)
        case start
        case end
    }

    /// Beyond this many instructions (large counted repetitions) the Foundation engine is used.
    private static let maxProgramSize = 4_096

    private let program: [Instruction]
    private let classes: [ScalarClass]
    private let anchoredAtStart: Bool

    /// Compiles `pattern`, or returns `nil` when it uses syntax outside the subset.
    init?(_ pattern: String) {
        var parser = Parser(scalars: Array(pattern.unicodeScalars))
        guard let node = parser.parseAlternation(), parser.position == parser.scalars.count else { return nil }
        var builder = Builder()
        builder.emit(node)
        builder.program.append(.match)
        guard builder.program.count <= Self.maxProgramSize else { return nil }
        program = builder.program
        classes = builder.classes
        if case .assertStart = program[0] { anchoredAtStart = true } else { anchoredAtStart = false }
    }

    /// Whether the pattern matches anywhere in `text` (ECMA-262 `RegExp.prototype.test`).
    func matches(_ text: String) -> Bool {
        let size = program.count
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: size * 4) { storage in
            let base = storage.baseAddress.unsafelyUnwrapped
            var current = base
            var next = base + size
            let marks = base + 2 * size
            let stack = base + 3 * size
            for index in 0..<size { marks[index] = -1 }
            var generation = 0
            var currentCount = 0
            var nextCount = 0

            /// Adds `start` and everything reachable from it without consuming to `list`;
            /// `true` when that reaches `match`.
            func addThread(
                _ list: UnsafeMutablePointer<Int>, _ count: inout Int, _ start: Int, atStart: Bool, atEnd: Bool
            ) -> Bool {
                var depth = 0
                stack[0] = start
                depth = 1
                while depth > 0 {
                    depth -= 1
                    let pc = stack[depth]
                    if marks[pc] == generation { continue }
                    marks[pc] = generation
                    switch program[pc] {
                    case .match:
                        return true
                    case .consume:
                        list[count] = pc
                        count += 1
                    case .jump(let target):
                        stack[depth] = target
                        depth += 1
                    case .split(let first, let second):
                        stack[depth] = second
                        stack[depth + 1] = first
                        depth += 2
                    case .assertStart:
                        if atStart {
                            stack[depth] = pc + 1
                            depth += 1
                        }
                    case .assertEnd:
                        if atEnd {
                            stack[depth] = pc + 1
                            depth += 1
                        }
                    }
                }
                return false
            }

            var iterator = text.unicodeScalars.makeIterator()
            var scalar = iterator.next()
            if addThread(current, &currentCount, 0, atStart: true, atEnd: scalar == nil) { return true }
            while let value = scalar?.value {
                let following = iterator.next()
                generation += 1
                nextCount = 0
                for entry in 0..<currentCount {
                    let pc = current[entry]
                    guard case .consume(let set) = program[pc], classes[set].contains(value) else { continue }
                    if addThread(next, &nextCount, pc + 1, atStart: false, atEnd: following == nil) { return true }
                }
                if !anchoredAtStart {
                    if addThread(next, &nextCount, 0, atStart: false, atEnd: following == nil) { return true }
                }
                swap(&current, &next)
                currentCount = nextCount
                if currentCount == 0 && anchoredAtStart { return false }
                scalar = following
            }
            return false
        }
    }

    private struct Builder {
        var program: [Instruction] = []
        var classes: [ScalarClass] = []

        mutating func emit(_ node: Node) {
            guard program.count <= PatternMatcher.maxProgramSize else { return }
            switch node {
            case .empty:
                break
            case .scalars(let set):
                classes.append(set)
                program.append(.consume(classes.count - 1))
            case .sequence(let items):
                for item in items { emit(item) }
            case .alternation(let branches):
                var exits: [Int] = []
                for (offset, branch) in branches.enumerated() {
                    if offset == branches.count - 1 {
                        emit(branch)
                    } else {
                        let split = program.count
                        program.append(.split(split + 1, 0))
                        emit(branch)
                        exits.append(program.count)
                        program.append(.jump(0))
                        program[split] = .split(split + 1, program.count)
                    }
                }
                for exit in exits { program[exit] = .jump(program.count) }
            case .repetition(let body, let min, let max):
                for _ in 0..<min { emit(body) }
                if let max {
                    var exits: [Int] = []
                    for _ in min..<max {
                        exits.append(program.count)
                        program.append(.split(program.count + 1, 0))
                        emit(body)
                    }
                    for exit in exits { program[exit] = .split(exit + 1, program.count) }
                } else {
                    let loop = program.count
                    program.append(.split(loop + 1, 0))
                    emit(body)
                    program.append(.jump(loop))
                    program[loop] = .split(loop + 1, program.count)
                }
            case .start:
                program.append(.assertStart)
            case .end:
                program.append(.assertEnd)
            }
        }
    }

    private struct Parser {
        let scalars: [Unicode.Scalar]
        var position = 0

        init(scalars: [Unicode.Scalar]) {
            self.scalars = scalars
        }

        private var current: Unicode.Scalar? { position < scalars.count ? scalars[position] : nil }

        mutating func parseAlternation() -> Node? {
            var branches: [Node] = []
            while true {
                guard let branch = parseSequence() else { return nil }
                branches.append(branch)
                guard current == "|" else { break }
                position += 1
            }
            return branches.count == 1 ? branches[0] : .alternation(branches)
        }

        private mutating func parseSequence() -> Node? {
            var items: [Node] = []
            while let scalar = current, scalar != "|", scalar != ")" {
                guard let atom = parseAtom(), let quantified = parseQuantifier(atom) else { return nil }
                items.append(quantified)
            }
            return items.isEmpty ? .empty : (items.count == 1 ? items[0] : .sequence(items))
        }

        private mutating func parseAtom() -> Node? {
            guard let scalar = current else { return nil }
            position += 1
            switch scalar {
            case "(":
                if current == "?" {
                    guard position + 1 < scalars.count, scalars[position + 1] == ":" else { return nil }
                    position += 2
                }
                guard let inner = parseAlternation(), current == ")" else { return nil }
                position += 1
                return inner
            case "[": return parseClass()
            case ".": return .scalars(.dot)
            case "^": return .start
            case "$": return .end
            case "\\": return parseEscape(inClass: false).map { .scalars($0) }
            case "*", "+", "?", "{", "}", "]", ")": return nil
            default: return .scalars(.of([scalar.value...scalar.value]))
            }
        }

        private mutating func parseQuantifier(_ atom: Node) -> Node? {
            guard let scalar = current else { return atom }
            var min = 0
            var max: Int?
            switch scalar {
            case "*": position += 1
            case "+": min = 1; position += 1
            case "?": max = 1; position += 1
            case "{":
                position += 1
                guard let lower = parseNumber() else { return nil }
                min = lower
                max = lower
                if current == "," {
                    position += 1
                    max = current == "}" ? nil : parseNumber()
                    if max == nil && current != "}" { return nil }
                }
                guard current == "}" else { return nil }
                position += 1
                if let max, max < min { return nil }
            default:
                return atom
            }
            switch atom {
            case .start, .end: return nil  // a quantified anchor: leave it to the full engine
            default: break
            }
            if current == "?" { position += 1 }  // lazy: same yes/no answer
            if let next = current, next == "*" || next == "+" || next == "?" || next == "{" { return nil }
            return .repetition(atom, min: min, max: max)
        }

        private mutating func parseNumber() -> Int? {
            var value = 0
            var digits = 0
            while let scalar = current, (0x30...0x39).contains(scalar.value) {
                value = value * 10 + Int(scalar.value - 0x30)
                digits += 1
                position += 1
                if value > 1_000 { return nil }
            }
            return digits > 0 ? value : nil
        }

        private mutating func parseClass() -> Node? {
            var set = ScalarClass()
            if current == "^" {
                set.negated = true
                position += 1
            }
            while let scalar = current, scalar != "]" {
                position += 1
                var lower: UInt32
                if scalar == "\\" {
                    guard let escaped = parseEscape(inClass: true) else { return nil }
                    guard escaped.ranges.count <= 1, escaped.negated == false,
                        let single = Self.singleScalar(escaped)
                    else {
                        // A class escape such as \d inside brackets: add it whole; no range.
                        guard !escaped.negated else { return nil }
                        set.insert(escaped)
                        continue
                    }
                    lower = single
                } else {
                    lower = scalar.value
                }
                var upper = lower
                if current == "-", position + 1 < scalars.count, scalars[position + 1] != "]" {
                    position += 1
                    let end = scalars[position]
                    position += 1
                    if end == "\\" {
                        guard let escaped = parseEscape(inClass: true), let single = Self.singleScalar(escaped) else {
                            return nil
                        }
                        upper = single
                    } else {
                        upper = end.value
                    }
                    guard lower <= upper else { return nil }
                }
                set.insert(lower...upper)
            }
            guard current == "]" else { return nil }
            position += 1
            return .scalars(set)
        }

        /// The one code point a class holds, if it holds exactly one.
        private static func singleScalar(_ set: ScalarClass) -> UInt32? {
            let asciiCount = set.asciiLow.nonzeroBitCount + set.asciiHigh.nonzeroBitCount
            if asciiCount == 1 && set.ranges.isEmpty {
                return set.asciiLow != 0
                    ? UInt32(set.asciiLow.trailingZeroBitCount) : UInt32(64 + set.asciiHigh.trailingZeroBitCount)
            }
            if asciiCount == 0, set.ranges.count == 1, set.ranges[0].count == 1 { return set.ranges[0].lowerBound }
            return nil
        }

        /// Reads the escape after a backslash.
        private mutating func parseEscape(inClass: Bool) -> ScalarClass? {
            guard let scalar = current else { return nil }
            position += 1
            func single(_ value: UInt32) -> ScalarClass { .of([value...value]) }
            switch scalar {
            case "d": return .digit
            case "D": return inClass ? nil : ScalarClass.of([0x30...0x39], negated: true)
            case "w": return .word
            case "W":
                guard !inClass else { return nil }
                var set = ScalarClass.word
                set.negated = true
                return set
            case "s": return .space
            case "S":
                guard !inClass else { return nil }
                var set = ScalarClass.space
                set.negated = true
                return set
            case "t": return single(0x09)
            case "n": return single(0x0A)
            case "v": return single(0x0B)
            case "f": return single(0x0C)
            case "r": return single(0x0D)
            case "b": return inClass ? single(0x08) : nil  // \b outside a class is a word boundary
            case "0":
                if let next = current, (0x30...0x39).contains(next.value) { return nil }
                return single(0)
            case "x": return parseHex(digits: 2).map(single)
            case "u": return parseHex(digits: 4).map(single)
            default:
                // Identity escapes of syntax characters only; letters and digits mean something
                // (or are errors) in ECMA-262 and go to the full engine.
                let syntax: Set<Unicode.Scalar> = [
                    "^", "$", "\\", ".", "*", "+", "?", "(", ")", "[", "]", "{", "}", "|", "/", "-",
                ]
                return syntax.contains(scalar) ? single(scalar.value) : nil
            }
        }

        private mutating func parseHex(digits: Int) -> UInt32? {
            guard scalars.count - position >= digits else { return nil }
            var value: UInt32 = 0
            for _ in 0..<digits {
                guard let digit = UInt32(String(scalars[position]), radix: 16) else { return nil }
                value = value << 4 | digit
                position += 1
            }
            // A surrogate escape needs UTF-16 semantics that code points do not have.
            if value >= 0xD800 && value <= 0xDFFF { return nil }
            return value
        }
    }
}
