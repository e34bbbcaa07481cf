/// A compiled ECMA-262 regular expression, matched in linear time: the only engine behind
/// `pattern` and `patternProperties`, so every answer is a function of pattern and string,
/// never of a time limit.
///
/// Syntax is ECMA-262's, with Annex B's rules for patterns without the `u` flag (as browsers
/// read them): `a{` is the literal text `a{`, `]` and `}` are literals, `^a++$` and `a**` are
/// syntax errors. Covered: literals, `.`, classes (`[a-z]`, `[^…]`, `\d \w \s` and their
/// negations, inside classes too), groups (`(…)`, `(?:…)`, `(?<name>…)`), alternation, the
/// quantifiers `* + ? {n} {n,} {n,m}` up to 1,000 (greedy or lazy: for a yes/no answer they match
/// the same strings), the anchors `^ $`, the word boundaries `\b \B`, and Unicode general
/// categories `\p{L}`, `\p{Lu}`, `\p{Letter}`, `\p{gc=Lu}`, `\P{…}`.
///
/// Two readings follow the `u` flag instead, because that is what schema authors mean and what
/// the JSON Schema test suite expects: the subject is a sequence of code points (`^.$` matches
/// one astral character), and `\p{…}` is a property class (without `u` it would be the text
/// `p{…}`). Syntax that needs backtracking or that the two modes read differently is refused
/// (``CompileError/Kind/unsupported``): back-references, look-around, `\p{Script=…}` and other
/// properties, legacy octal escapes, `\c` without a letter, lone surrogate escapes.
///
/// Matching simulates the automaton (a Pike VM without captures) instead of backtracking, so a
/// hostile instance string cannot trigger catastrophic backtracking: the cost is at most the
/// string's length times the program's size.
struct PatternMatcher: Sendable {
    private enum Instruction: Sendable {
        case match
        case consume(Int)
        case split(Int, Int)
        case jump(Int)
        case assertStart
        case assertEnd
        /// `\b` (`true`) or `\B` (`false`).
        case assertWordBoundary(Bool)
    }

    /// Why a pattern does not compile.
    struct CompileError: Error, Sendable, CustomStringConvertible {
        enum Kind: Sendable {
            /// Not an ECMA-262 pattern at all.
            case syntax
            /// A valid pattern this linear-time matcher does not implement.
            case unsupported
        }

        let kind: Kind
        let message: String

        var description: String { message }
    }

    /// A set of code points: a bitmap for ASCII, ranges above.
    struct ScalarClass: Sendable {
        var asciiLow: UInt64 = 0
        var asciiHigh: UInt64 = 0
        var ranges: [ClosedRange<UInt32>] = []
        /// General categories (bit ``categoryBit(of:)``) whose members belong, above ASCII:
        /// ASCII members are already in the bitmaps.
        var categories: UInt32 = 0
        /// For each `\P{…}` inside brackets: members are the scalars outside these categories.
        var excludedCategories: [UInt32] = []
        var negated = false

        /// Adds the scalars of general categories (`mask`), or of every other category.
        mutating func insert(categories mask: UInt32, complement: Bool) {
            for value in UInt32(0)..<128 {
                let inMask = mask & Self.categoryBit(of: value) != 0
                if inMask != complement { insert(value...value) }
            }
            if complement { excludedCategories.append(mask) } else { categories |= mask }
        }

        static func categoryBit(of value: UInt32) -> UInt32 {
            guard let scalar = Unicode.Scalar(value) else { return 1 << 29 }  // surrogates: Cs
            let bit: Int
            switch scalar.properties.generalCategory {
            case .uppercaseLetter: bit = 0
            case .lowercaseLetter: bit = 1
            case .titlecaseLetter: bit = 2
            case .modifierLetter: bit = 3
            case .otherLetter: bit = 4
            case .nonspacingMark: bit = 5
            case .spacingMark: bit = 6
            case .enclosingMark: bit = 7
            case .decimalNumber: bit = 8
            case .letterNumber: bit = 9
            case .otherNumber: bit = 10
            case .connectorPunctuation: bit = 11
            case .dashPunctuation: bit = 12
            case .openPunctuation: bit = 13
            case .closePunctuation: bit = 14
            case .initialPunctuation: bit = 15
            case .finalPunctuation: bit = 16
            case .otherPunctuation: bit = 17
            case .mathSymbol: bit = 18
            case .currencySymbol: bit = 19
            case .modifierSymbol: bit = 20
            case .otherSymbol: bit = 21
            case .spaceSeparator: bit = 22
            case .lineSeparator: bit = 23
            case .paragraphSeparator: bit = 24
            case .control: bit = 25
            case .format: bit = 26
            case .privateUse: bit = 27
            case .unassigned: bit = 28
            case .surrogate: bit = 29
            @unknown default: bit = 28
            }
            return 1 << UInt32(bit)
        }

        /// The scalars not in `ranges` (sorted or not), over all of Unicode.
        static func complement(of ranges: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
            var result: [ClosedRange<UInt32>] = []
            var next: UInt32 = 0
            for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
                if range.lowerBound > next { result.append(next...(range.lowerBound - 1)) }
                next = max(next, range.upperBound &+ 1)
            }
            if next <= 0x10FFFF { result.append(next...0x10FFFF) }
            return result
        }

        mutating func insert(_ range: ClosedRange<UInt32>) {
            var lower = range.lowerBound
            while lower <= range.upperBound && lower < 128 {
                if lower < 64 { asciiLow |= 1 << UInt64(lower) } else { asciiHigh |= 1 << UInt64(lower - 64) }
                lower += 1
            }
            if lower <= range.upperBound { ranges.append(lower...range.upperBound) }
        }

        /// Adds the members of a non-negated class.
        mutating func insert(_ other: ScalarClass) {
            asciiLow |= other.asciiLow
            asciiHigh |= other.asciiHigh
            ranges += other.ranges
            categories |= other.categories
            excludedCategories += other.excludedCategories
        }

        @inline(__always)
        func contains(_ value: UInt32) -> Bool {
            let found: Bool
            if value < 64 {
                found = asciiLow & (1 << UInt64(value)) != 0
            } else if value < 128 {
                found = asciiHigh & (1 << UInt64(value - 64)) != 0
            } else if ranges.contains(where: { $0.contains(value) }) {
                found = true
            } else if categories != 0 || !excludedCategories.isEmpty {
                let bit = Self.categoryBit(of: value)
                found = categories & bit != 0 || excludedCategories.contains { $0 & bit == 0 }
            } else {
                found = false
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
        case wordBoundary(Bool)
    }

    /// Beyond this many instructions (large counted repetitions) a pattern is refused: the
    /// matcher's cost per character grows with the program.
    private static let maxProgramSize = 4_096
    /// The largest count `{n}`, `{n,m}` accepts.
    static let maxRepetition = 1_000

    private let program: [Instruction]
    private let classes: [ScalarClass]
    private let anchoredAtStart: Bool
    /// Whether `\b` or `\B` occurs: only then is each position's boundary worked out.
    private let usesWordBoundary: Bool

    /// Compiles `pattern`.
    ///
    /// - Throws: ``CompileError`` of kind `syntax` for text that is no ECMA-262 pattern, of
    ///   kind `unsupported` for a valid pattern outside what this matcher implements.
    init(_ pattern: String) throws(CompileError) {
        var parser = Parser(scalars: Array(pattern.unicodeScalars))
        let node = try parser.parseAlternation()
        if parser.position != parser.scalars.count {
            throw CompileError(kind: .syntax, message: "unmatched ')' at position \(parser.position)")
        }
        var builder = Builder()
        builder.emit(node)
        builder.program.append(.match)
        guard builder.program.count <= Self.maxProgramSize else {
            throw CompileError(
                kind: .unsupported,
                message: "the pattern compiles to more than \(Self.maxProgramSize) steps (large counted repetitions)")
        }
        program = builder.program
        classes = builder.classes
        if case .assertStart = program[0] { anchoredAtStart = true } else { anchoredAtStart = false }
        usesWordBoundary = program.contains { if case .assertWordBoundary = $0 { true } else { false } }
    }

    /// Whether the pattern matches anywhere in `text` (ECMA-262 `RegExp.prototype.test`).
    func matches(_ text: String) -> Bool {
        let size = program.count
        // Classes are read in place: copying one out of the array per character retains and
        // releases its range and category arrays, which showed in the envelope decoder's profile.
        return classes.withUnsafeBufferPointer { classes in
        withUnsafeTemporaryAllocation(of: Int.self, capacity: size * 4) { storage in
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
                _ list: UnsafeMutablePointer<Int>, _ count: inout Int, _ start: Int, atStart: Bool, atEnd: Bool,
                boundary: Bool
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
                    case .assertWordBoundary(let wanted):
                        if boundary == wanted {
                            stack[depth] = pc + 1
                            depth += 1
                        }
                    }
                }
                return false
            }

            /// ECMA-262 IsWordChar: `\w`'s 63 ASCII characters.
            func isWord(_ scalar: Unicode.Scalar?) -> Bool {
                guard let value = scalar?.value, value < 128 else { return false }
                return ScalarClass.word.contains(value)
            }

            var iterator = text.unicodeScalars.makeIterator()
            var scalar = iterator.next()
            if addThread(current, &currentCount, 0, atStart: true, atEnd: scalar == nil, boundary: usesWordBoundary && isWord(scalar)) {
                return true
            }
            while let value = scalar?.value {
                let following = iterator.next()
                let boundary = usesWordBoundary && isWord(scalar) != isWord(following)
                generation += 1
                nextCount = 0
                for entry in 0..<currentCount {
                    let pc = current[entry]
                    guard case .consume(let set) = program[pc], classes[set].contains(value) else { continue }
                    if addThread(next, &nextCount, pc + 1, atStart: false, atEnd: following == nil, boundary: boundary) {
                        return true
                    }
                }
                if !anchoredAtStart {
                    if addThread(next, &nextCount, 0, atStart: false, atEnd: following == nil, boundary: boundary) {
                        return true
                    }
                }
                swap(&current, &next)
                currentCount = nextCount
                if currentCount == 0 && anchoredAtStart { return false }
                scalar = following
            }
            return false
        }
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
            case .wordBoundary(let wanted):
                program.append(.assertWordBoundary(wanted))
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

        private func syntax(_ message: String) -> CompileError {
            CompileError(kind: .syntax, message: message)
        }

        private func unsupported(_ message: String) -> CompileError {
            CompileError(kind: .unsupported, message: message)
        }

        mutating func parseAlternation() throws(CompileError) -> Node {
            var branches: [Node] = []
            while true {
                branches.append(try parseSequence())
                guard current == "|" else { break }
                position += 1
            }
            return branches.count == 1 ? branches[0] : .alternation(branches)
        }

        private mutating func parseSequence() throws(CompileError) -> Node {
            var items: [Node] = []
            while let scalar = current, scalar != "|", scalar != ")" {
                let atom = try parseAtom()
                items.append(try parseQuantifier(atom))
            }
            return items.isEmpty ? .empty : (items.count == 1 ? items[0] : .sequence(items))
        }

        /// The braced quantifier starting at `index` (`{n}`, `{n,}`, `{n,m}`), without consuming
        /// it: its bounds (`nil` for an open end, `Int.max` for a count too large to hold) and
        /// the index after `}`. `nil` when the text there is no braced quantifier, which Annex B
        /// then reads as a literal `{`.
        private func bracedQuantifier(at index: Int) -> (min: Int, max: Int?, end: Int)? {
            guard index < scalars.count, scalars[index] == "{" else { return nil }
            var cursor = index + 1
            func number() -> Int? {
                var value = 0
                var digits = 0
                while cursor < scalars.count, (0x30...0x39).contains(scalars[cursor].value) {
                    value = value > Int.max / 20 ? Int.max / 2 : value * 10 + Int(scalars[cursor].value - 0x30)
                    digits += 1
                    cursor += 1
                }
                return digits > 0 ? value : nil
            }
            guard let lower = number() else { return nil }
            var upper: Int? = lower
            if cursor < scalars.count, scalars[cursor] == "," {
                cursor += 1
                upper = number()
            }
            guard cursor < scalars.count, scalars[cursor] == "}" else { return nil }
            return (lower, upper, cursor + 1)
        }

        private mutating func parseAtom() throws(CompileError) -> Node {
            guard let scalar = current else { throw syntax("unexpected end of pattern") }
            switch scalar {
            case "*", "+", "?":
                throw syntax("nothing to repeat before '\(scalar)' at position \(position)")
            case "{":
                if bracedQuantifier(at: position) != nil {
                    throw syntax("nothing to repeat before '{' at position \(position)")
                }
                position += 1
                return .scalars(.of([scalar.value...scalar.value]))  // Annex B: a literal '{'
            default:
                break
            }
            position += 1
            switch scalar {
            case "(":
                if current == "?" {
                    let next = position + 1 < scalars.count ? scalars[position + 1] : nil
                    switch next {
                    case ":":
                        position += 2
                    case "=", "!":
                        throw unsupported("look-ahead (?\(next!)…) needs backtracking")
                    case "<":
                        let after = position + 2 < scalars.count ? scalars[position + 2] : nil
                        if after == "=" || after == "!" {
                            throw unsupported("look-behind (?<\(after!)…) needs backtracking")
                        }
                        // A named group: captures do not change a yes/no answer.
                        position += 2
                        let nameStart = position
                        while let character = current, character != ">" {
                            guard character.properties.isXIDContinue || character == "$" else {
                                throw syntax("invalid group name at position \(position)")
                            }
                            position += 1
                        }
                        guard current == ">", position > nameStart else { throw syntax("invalid group name") }
                        position += 1
                    default:
                        throw syntax("invalid group '(?' at position \(position - 1)")
                    }
                }
                let inner = try parseAlternation()
                guard current == ")" else { throw syntax("unterminated group") }
                position += 1
                return inner
            case "[": return try parseClass()
            case ".": return .scalars(.dot)
            case "^": return .start
            case "$": return .end
            case "\\":
                switch current {
                case "b":
                    position += 1
                    return .wordBoundary(true)
                case "B":
                    position += 1
                    return .wordBoundary(false)
                default:
                    return .scalars(try parseEscape(inClass: false))
                }
            case ")": throw syntax("unmatched ')'")
            default: return .scalars(.of([scalar.value...scalar.value]))  // ']' and '}' included (Annex B)
            }
        }

        private mutating func parseQuantifier(_ atom: Node) throws(CompileError) -> Node {
            guard let scalar = current else { return atom }
            var min = 0
            var max: Int?
            switch scalar {
            case "*": position += 1
            case "+": min = 1; position += 1
            case "?": max = 1; position += 1
            case "{":
                // Annex B: a '{' that starts no braced quantifier is a literal, read as the next atom.
                guard let braced = bracedQuantifier(at: position) else { return atom }
                (min, max) = (braced.min, braced.max)
                position = braced.end
                if let max, max < min { throw syntax("numbers out of order in {\(min),\(max)} quantifier") }
                if (max ?? min) > PatternMatcher.maxRepetition {
                    throw unsupported("counted repetition over \(PatternMatcher.maxRepetition)")
                }
            default:
                return atom
            }
            switch atom {
            case .start, .end, .wordBoundary:
                throw syntax("nothing to repeat: an assertion cannot be quantified")
            default: break
            }
            if current == "?" { position += 1 }  // lazy: same yes/no answer
            if let next = current, next == "*" || next == "+" || next == "?" || bracedQuantifier(at: position) != nil {
                throw syntax("nothing to repeat before '\(next)' at position \(position) (a quantifier after a quantifier)")
            }
            return .repetition(atom, min: min, max: max)
        }

        private mutating func parseClass() throws(CompileError) -> Node {
            var set = ScalarClass()
            if current == "^" {
                set.negated = true
                position += 1
            }
            while let scalar = current, scalar != "]" {
                let lower = try parseClassAtom()
                // A range only between two single characters; Annex B reads `[\d-z]` as the
                // union of \d, '-' and 'z'.
                if current == "-", position + 1 < scalars.count, scalars[position + 1] != "]" {
                    let dash = position
                    position += 1
                    let upper = try parseClassAtom()
                    if let low = Self.singleScalar(lower), let high = Self.singleScalar(upper) {
                        guard low <= high else { throw syntax("range out of order in character class at position \(dash)") }
                        set.insert(low...high)
                        continue
                    }
                    set.insert(lower)
                    set.insert(.of([0x2D...0x2D]))
                    set.insert(upper)
                    continue
                }
                set.insert(lower)
            }
            guard current == "]" else { throw syntax("unterminated character class") }
            position += 1
            return .scalars(set)
        }

        /// One class member: a character or an escape (as a non-negated set).
        private mutating func parseClassAtom() throws(CompileError) -> ScalarClass {
            guard let scalar = current else { throw syntax("unterminated character class") }
            position += 1
            guard scalar == "\\" else { return .of([scalar.value...scalar.value]) }
            var escaped = try parseEscape(inClass: true)
            if escaped.negated {
                // \D, \W, \S inside brackets: their complement as ranges.
                var positive = ScalarClass.of(ScalarClass.complement(of: Self.allRanges(escaped)))
                positive.negated = false
                escaped = positive
            }
            return escaped
        }

        /// The members of a range-only class as ranges, ASCII included.
        private static func allRanges(_ set: ScalarClass) -> [ClosedRange<UInt32>] {
            var ranges = set.ranges
            for value in UInt32(0)..<128 {
                let bit = value < 64 ? set.asciiLow >> UInt64(value) & 1 : set.asciiHigh >> UInt64(value - 64) & 1
                if bit != 0 { ranges.append(value...value) }
            }
            return ranges
        }

        /// The one code point a class holds, if it holds exactly one.
        private static func singleScalar(_ set: ScalarClass) -> UInt32? {
            guard !set.negated, set.categories == 0, set.excludedCategories.isEmpty else { return nil }
            let asciiCount = set.asciiLow.nonzeroBitCount + set.asciiHigh.nonzeroBitCount
            if asciiCount == 1 && set.ranges.isEmpty {
                return set.asciiLow != 0
                    ? UInt32(set.asciiLow.trailingZeroBitCount) : UInt32(64 + set.asciiHigh.trailingZeroBitCount)
            }
            if asciiCount == 0, set.ranges.count == 1, set.ranges[0].count == 1 { return set.ranges[0].lowerBound }
            return nil
        }

        /// Reads the escape after a backslash.
        private mutating func parseEscape(inClass: Bool) throws(CompileError) -> ScalarClass {
            guard let scalar = current else { throw syntax("\\ at end of pattern") }
            position += 1
            func single(_ value: UInt32) -> ScalarClass { .of([value...value]) }
            switch scalar {
            case "d": return .digit
            case "D": return ScalarClass.of([0x30...0x39], negated: true)
            case "w": return .word
            case "W":
                var set = ScalarClass.word
                set.negated = true
                return set
            case "s": return .space
            case "S":
                var set = ScalarClass.space
                set.negated = true
                return set
            case "t": return single(0x09)
            case "n": return single(0x0A)
            case "v": return single(0x0B)
            case "f": return single(0x0C)
            case "r": return single(0x0D)
            case "b": return single(0x08)  // inside a class (outside, parseAtom reads a word boundary)
            case "0":
                if let next = current, (0x30...0x39).contains(next.value) {
                    throw unsupported("legacy octal escape \\0\(next)")
                }
                return single(0)
            case "1", "2", "3", "4", "5", "6", "7", "8", "9":
                throw unsupported("back-reference or legacy octal escape \\\(scalar) needs backtracking")
            case "k":
                throw unsupported("\\k (a named back-reference) needs backtracking")
            case "c":
                guard let letter = current, (0x41...0x5A).contains(letter.value) || (0x61...0x7A).contains(letter.value) else {
                    throw unsupported("\\c without a control letter")
                }
                position += 1
                return single(letter.value % 32)
            case "x":
                // Annex B: \x without two hex digits is the letter x.
                guard let value = parseHex(digits: 2) else { return single(0x78) }
                return single(value)
            case "u":
                if current == "{" { throw unsupported("\\u{…} means different things with and without the u flag") }
                guard let unit = parseHex(digits: 4) else { return single(0x75) }  // Annex B: the letter u
                if (0xD800...0xDBFF).contains(unit), position + 1 < scalars.count, scalars[position] == "\\",
                    scalars[position + 1] == "u"
                {
                    let saved = position
                    position += 2
                    if let low = parseHex(digits: 4), (0xDC00...0xDFFF).contains(low) {
                        return single(0x10000 + (unit - 0xD800) << 10 + (low - 0xDC00))
                    }
                    position = saved
                }
                if (0xD800...0xDFFF).contains(unit) {
                    throw unsupported("a lone surrogate \\u\(String(unit, radix: 16, uppercase: true)) never matches code-point text")
                }
                return single(unit)
            case "p", "P":
                return try parseProperty(negated: scalar == "P")
            default:
                // Annex B identity escape: the character itself.
                return single(scalar.value)
            }
        }

        /// `\p{…}` / `\P{…}` after the letter: a general category, as with the `u` flag.
        private mutating func parseProperty(negated: Bool) throws(CompileError) -> ScalarClass {
            guard current == "{" else {
                throw unsupported("\\p without {…} (the letter p without the u flag, a property class with it)")
            }
            position += 1
            var text = ""
            while let character = current, character != "}" {
                text.unicodeScalars.append(character)
                position += 1
            }
            guard current == "}" else { throw syntax("unterminated \\p{…}") }
            position += 1
            var name = Substring(text)
            if let equals = text.firstIndex(of: "=") {
                let property = text[..<equals]
                guard property == "General_Category" || property == "gc" else {
                    throw unsupported("\\p{\(text)}: only general categories are supported, not \(property)")
                }
                name = text[text.index(after: equals)...]
            }
            guard let mask = Self.generalCategoryMasks[String(name)] else {
                throw unsupported("\\p{\(text)}: not a general category this matcher knows")
            }
            var set = ScalarClass()
            set.insert(categories: mask, complement: negated)
            return set
        }

        /// General category values (short and long names) and their bits in
        /// ``ScalarClass/categoryBit(of:)``, groups included.
        static let generalCategoryMasks: [String: UInt32] = {
            let single: [(String, String)] = [
                ("Lu", "Uppercase_Letter"), ("Ll", "Lowercase_Letter"), ("Lt", "Titlecase_Letter"),
                ("Lm", "Modifier_Letter"), ("Lo", "Other_Letter"), ("Mn", "Nonspacing_Mark"),
                ("Mc", "Spacing_Mark"), ("Me", "Enclosing_Mark"), ("Nd", "Decimal_Number"),
                ("Nl", "Letter_Number"), ("No", "Other_Number"), ("Pc", "Connector_Punctuation"),
                ("Pd", "Dash_Punctuation"), ("Ps", "Open_Punctuation"), ("Pe", "Close_Punctuation"),
                ("Pi", "Initial_Punctuation"), ("Pf", "Final_Punctuation"), ("Po", "Other_Punctuation"),
                ("Sm", "Math_Symbol"), ("Sc", "Currency_Symbol"), ("Sk", "Modifier_Symbol"), ("So", "Other_Symbol"),
                ("Zs", "Space_Separator"), ("Zl", "Line_Separator"), ("Zp", "Paragraph_Separator"),
                ("Cc", "Control"), ("Cf", "Format"), ("Co", "Private_Use"), ("Cn", "Unassigned"), ("Cs", "Surrogate"),
            ]
            var masks: [String: UInt32] = [:]
            for (bit, names) in single.enumerated() {
                masks[names.0] = 1 << UInt32(bit)
                masks[names.1] = 1 << UInt32(bit)
            }
            func group(_ short: String, _ long: [String], _ range: ClosedRange<Int>) {
                let mask = range.reduce(UInt32(0)) { $0 | 1 << UInt32($1) }
                masks[short] = mask
                for name in long { masks[name] = mask }
            }
            group("L", ["Letter"], 0...4)
            group("LC", ["Cased_Letter"], 0...2)
            group("M", ["Mark", "Combining_Mark"], 5...7)
            group("N", ["Number"], 8...10)
            group("P", ["Punctuation", "punct"], 11...17)
            group("S", ["Symbol"], 18...21)
            group("Z", ["Separator"], 22...24)
            group("C", ["Other"], 25...29)
            masks["Cc"] = 1 << 25
            masks["cntrl"] = 1 << 25
            masks["Nd"] = 1 << 8
            masks["digit"] = 1 << 8
            return masks
        }()

        private mutating func parseHex(digits: Int) -> UInt32? {
            guard scalars.count - position >= digits else { return nil }
            var value: UInt32 = 0
            for offset in 0..<digits {
                guard let digit = UInt32(String(scalars[position + offset]), radix: 16) else { return nil }
                value = value << 4 | digit
            }
            position += digits
            return value
        }
    }
}
