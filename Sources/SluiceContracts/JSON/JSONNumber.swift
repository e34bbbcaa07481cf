/// A JSON number, kept exact for JSON Schema (`const`, `enum`, bounds, `multipleOf`, `integer`).
///
/// Besides the `Double`, a number keeps its decimal value as `significand × 10^exponent` with
/// the significand's trailing zeros removed, so `0.1`, `1.10` and `12999` are held exactly.
/// A significand too wide for 64 bits (more than about 19 significant digits, such as 2^70 + 1)
/// is kept as its decimal digits instead, so no literal loses digits. Comparison, equality and
/// `multipleOf` use the decimal form; they fall back to `Double` only for numbers built from a
/// non-finite `Double` and for exponents beyond ±10^9, whose `Double` is already 0 or infinite.
public struct JSONNumber: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The number as a `Double` (may round for very large or very precise literals).
    public let doubleValue: Double
    /// The decimal significand, without trailing zeros (zero for zero). For a wide number, its
    /// leading digits only: read ``wideDigits`` instead.
    let significand: UInt64
    /// Every significant digit (0–9, most significant first, no leading or trailing zeros) when
    /// the significand does not fit in 64 bits; `nil` otherwise, which is almost always. Only
    /// numbers that do not fit use it, so each value has one representation and a wide number
    /// never equals a narrow one.
    let wideDigits: WideDigits?
    /// The decimal exponent applied to ``significand`` (or to ``wideDigits``).
    let exponent: Int32
    let flags: UInt8

    static let negativeFlag: UInt8 = 1
    /// Set when significant digits were dropped: the decimal form is then an approximation.
    static let inexactFlag: UInt8 = 2
    /// Set when a dropped digit was a non-zero fraction digit (so the number is no integer).
    static let droppedFractionFlag: UInt8 = 4

    init(doubleValue: Double, significand: UInt64, exponent: Int32, flags: UInt8, wideDigits: WideDigits? = nil) {
        self.doubleValue = doubleValue
        self.significand = significand
        self.wideDigits = wideDigits
        self.exponent = exponent
        self.flags = flags
    }

    /// Creates an exact integer.
    public init(_ value: Int64) {
        var significand = value.magnitude
        var exponent: Int32 = 0
        while significand != 0, significand % 10 == 0 {
            significand /= 10
            exponent += 1
        }
        self.init(
            doubleValue: Double(value), significand: significand, exponent: exponent,
            flags: value < 0 ? Self.negativeFlag : 0)
    }

    /// Creates a number from a `Double`, whose decimal form is its shortest round-trip literal.
    ///
    /// So `JSONNumber(0.1)` equals the parsed literal `0.1`. NaN and infinities, which JSON
    /// cannot spell, are kept as `Double` only and serialize as `null`.
    public init(_ value: Double) {
        if value.isFinite {
            var literal = value.description
            let parsed: JSONNumber? = literal.withUTF8 { buffer in
                var scanner = JSONNumberScanner(input: buffer, position: 0)
                return try? scanner.scan()
            }
            if let parsed, parsed.doubleValue == value {
                self = parsed
                return
            }
        }
        self.init(
            doubleValue: value, significand: 0, exponent: 0,
            flags: Self.inexactFlag | (value.sign == .minus ? Self.negativeFlag : 0))
    }

    /// The exact value when the number is an integer that fits in `Int64` (`1.0` counts as one).
    public var int64Value: Int64? {
        // A wide significand is over 2^64 already.
        guard isExact, wideDigits == nil, exponent >= 0 else { return nil }
        var magnitude = significand
        var remaining = exponent
        while remaining > 0 {
            let (product, overflow) = magnitude.multipliedReportingOverflow(by: 10)
            if overflow { return nil }
            magnitude = product
            remaining -= 1
        }
        if isNegative {
            if magnitude == UInt64(Int64.max) + 1 { return .min }
            return magnitude <= UInt64(Int64.max) ? -Int64(magnitude) : nil
        }
        return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : nil
    }

    /// Whether the number has no fractional part (JSON Schema's `integer`).
    public var isInteger: Bool {
        if isExact { return significand == 0 || exponent >= 0 }
        if !doubleValue.isFinite { return false }
        if flags & Self.droppedFractionFlag != 0 { return false }
        return exponent >= 0
    }

    var isNegative: Bool { flags & Self.negativeFlag != 0 && significand != 0 }
    var isExact: Bool { flags & Self.inexactFlag == 0 }

    // MARK: Comparison

    public static func == (lhs: JSONNumber, rhs: JSONNumber) -> Bool {
        if lhs.isExact, rhs.isExact {
            if lhs.wideDigits != nil || rhs.wideDigits != nil {
                // One representation per value: a wide number equals only a wide one.
                guard let left = lhs.wideDigits, let right = rhs.wideDigits else { return false }
                return lhs.exponent == rhs.exponent && lhs.isNegative == rhs.isNegative && left.digits == right.digits
            }
            if lhs.significand == 0 || rhs.significand == 0 { return lhs.significand == rhs.significand }
            return lhs.significand == rhs.significand && lhs.exponent == rhs.exponent
                && lhs.isNegative == rhs.isNegative
        }
        return lhs.doubleValue == rhs.doubleValue
    }

    public func hash(into hasher: inout Hasher) {
        // Equal numbers always have equal doubles (rounding is deterministic, and a wide
        // number's double is its literal's correctly rounded value), so hash those.
        hasher.combine(doubleValue == 0 ? 0 : doubleValue)
    }

    public static func < (lhs: JSONNumber, rhs: JSONNumber) -> Bool {
        compare(lhs, rhs) < 0
    }

    /// -1, 0 or 1 as `lhs` is below, equal to or above `rhs`, exactly for decimal literals.
    static func compare(_ lhs: JSONNumber, _ rhs: JSONNumber) -> Int {
        guard lhs.isExact, rhs.isExact else {
            return lhs.doubleValue < rhs.doubleValue ? -1 : (lhs.doubleValue == rhs.doubleValue ? 0 : 1)
        }
        let lhsNegative = lhs.isNegative
        if lhsNegative != rhs.isNegative {
            if lhs.significand == 0 && rhs.significand == 0 { return 0 }
            return lhsNegative ? -1 : 1
        }
        let magnitude = compareMagnitude(lhs, rhs)
        return lhsNegative ? -magnitude : magnitude
    }

    private static func compareMagnitude(_ lhs: JSONNumber, _ rhs: JSONNumber) -> Int {
        if lhs.significand == 0 { return rhs.significand == 0 ? 0 : -1 }
        if rhs.significand == 0 { return 1 }
        if lhs.wideDigits != nil || rhs.wideDigits != nil { return compareDigits(lhs, rhs) }
        let lhsDigits = digitCount(lhs.significand)
        let rhsDigits = digitCount(rhs.significand)
        let lhsOrder = lhsDigits + Int(lhs.exponent)
        let rhsOrder = rhsDigits + Int(rhs.exponent)
        if lhsOrder != rhsOrder { return lhsOrder < rhsOrder ? -1 : 1 }
        // Same order of magnitude: line the significands up on the same number of digits.
        var left = lhs.significand
        var right = rhs.significand
        if lhsDigits < rhsDigits {
            guard let scaled = scale(left, by: rhsDigits - lhsDigits) else { return 1 }
            left = scaled
        } else if rhsDigits < lhsDigits {
            guard let scaled = scale(right, by: lhsDigits - rhsDigits) else { return -1 }
            right = scaled
        }
        return left < right ? -1 : (left == right ? 0 : 1)
    }

    /// Whether `self / divisor` is an integer, exactly for decimal literals (JSON Schema's
    /// `multipleOf`).
    ///
    /// With `self = a·10^x` and `divisor = b·10^y` (no trailing zeros in `a` or `b`), the
    /// quotient is an integer exactly when `y ≤ x` and `b` divides `a·10^(x−y)`: the part of
    /// `b` prime to 10 must divide `a`, and its powers of 2 and 5 must be covered by `a`'s
    /// and the `10^(x−y)`.
    public func isMultiple(of divisor: JSONNumber) -> Bool {
        guard isExact, divisor.isExact, divisor.significand != 0 else {
            let quotient = doubleValue / divisor.doubleValue
            return quotient.isFinite && quotient.rounded(.towardZero) == quotient
        }
        if significand == 0 { return true }
        let shift = Int(exponent) - Int(divisor.exponent)
        if shift < 0 { return false }
        if wideDigits != nil || divisor.wideDigits != nil {
            return WideArithmetic.digits(decimalDigits, timesTenToThe: shift, areMultipleOf: divisor.decimalDigits)
        }
        var rest = divisor.significand
        var twos = 0
        var fives = 0
        while rest % 2 == 0 { rest /= 2; twos += 1 }
        while rest % 5 == 0 { rest /= 5; fives += 1 }
        guard significand % rest == 0 else { return false }
        var value = significand
        var valueTwos = 0
        var valueFives = 0
        while value % 2 == 0 { value /= 2; valueTwos += 1 }
        while value % 5 == 0 { value /= 5; valueFives += 1 }
        return valueTwos + shift >= twos && valueFives + shift >= fives
    }

    /// Magnitude comparison on decimal digits, for when either side is wide.
    private static func compareDigits(_ lhs: JSONNumber, _ rhs: JSONNumber) -> Int {
        let left = lhs.decimalDigits
        let right = rhs.decimalDigits
        let leftOrder = left.count + Int(lhs.exponent)
        let rightOrder = right.count + Int(rhs.exponent)
        if leftOrder != rightOrder { return leftOrder < rightOrder ? -1 : 1 }
        // Same order of magnitude: the first differing digit decides; without one, the longer
        // digit string is larger (its extra digits end in a non-zero one).
        for (a, b) in zip(left, right) where a != b { return a < b ? -1 : 1 }
        return left.count == right.count ? 0 : (left.count < right.count ? -1 : 1)
    }

    /// The significant digits, most significant first (`[]` for zero).
    var decimalDigits: [UInt8] {
        if let wideDigits { return wideDigits.digits }
        var digits: [UInt8] = []
        var rest = significand
        while rest > 0 {
            digits.append(UInt8(rest % 10))
            rest /= 10
        }
        digits.reverse()
        return digits
    }

    static func digitCount(_ value: UInt64) -> Int {
        var count = 1
        var rest = value
        while rest >= 10 { rest /= 10; count += 1 }
        return count
    }

    static func scale(_ value: UInt64, by digits: Int) -> UInt64? {
        var result = value
        for _ in 0..<digits {
            let (product, overflow) = result.multipliedReportingOverflow(by: 10)
            if overflow { return nil }
            result = product
        }
        return result
    }

    // MARK: Text

    /// The number as a compact JSON literal: exact digits for decimal literals.
    public var description: String {
        var bytes: [UInt8] = []
        appendLiteral(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    func appendLiteral(to bytes: inout [UInt8]) {
        guard isExact else {
            if doubleValue.isFinite {
                bytes.append(contentsOf: doubleValue.description.utf8)
            } else {
                bytes.append(contentsOf: "null".utf8)
            }
            return
        }
        if significand == 0 {
            if doubleValue.sign == .minus { bytes.append(UInt8(ascii: "-")) }
            bytes.append(UInt8(ascii: "0"))
            return
        }
        if isNegative { bytes.append(UInt8(ascii: "-")) }
        let digits = decimalDigits.map { UInt8(ascii: "0") + $0 }
        let exponent = Int(self.exponent)
        let pointPosition = digits.count + exponent  // digits before the decimal point
        if exponent >= 0 && pointPosition <= 21 {
            bytes.append(contentsOf: digits)
            bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: exponent))
        } else if exponent < 0 && pointPosition > 0 {
            bytes.append(contentsOf: digits[..<pointPosition])
            bytes.append(UInt8(ascii: "."))
            bytes.append(contentsOf: digits[pointPosition...])
        } else if exponent < 0 && pointPosition > -6 {
            bytes.append(contentsOf: "0.".utf8)
            bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: -pointPosition))
            bytes.append(contentsOf: digits)
        } else {
            bytes.append(digits[0])
            if digits.count > 1 {
                bytes.append(UInt8(ascii: "."))
                bytes.append(contentsOf: digits[1...])
            }
            bytes.append(UInt8(ascii: "e"))
            bytes.append(contentsOf: String(pointPosition - 1).utf8)
        }
    }
}

/// The digits of a number whose significand does not fit in 64 bits (see
/// ``JSONNumber/wideDigits``). A class so that ``JSONNumber`` stays small for the usual
/// numbers: one optional reference, never allocated for them.
final class WideDigits: Sendable {
    /// 0–9, most significant first, no leading or trailing zeros.
    let digits: [UInt8]

    init(_ digits: [UInt8]) {
        self.digits = digits
    }
}

/// Exact `multipleOf` for numbers with wide significands: unsigned integers as 32-bit limbs.
enum WideArithmetic {
    /// Whether `a · 10^shift` is a multiple of `b` (`a`, `b` decimal digits, `b` non-zero).
    ///
    /// Write `b = 2^t · 5^f · r` with `r` prime to 10. Then `a · 10^shift` is a multiple of `b`
    /// exactly when `a` is a multiple of `m = r · 2^max(0, t − shift) · 5^max(0, f − shift)`.
    /// `m` is at most `b` (the schema's side), and `a` (the instance's side, possibly huge) is
    /// only ever reduced modulo `m` one digit at a time, so the cost is linear in `a`'s digits.
    static func digits(_ a: [UInt8], timesTenToThe shift: Int, areMultipleOf b: [UInt8]) -> Bool {
        var rest = Limbs(decimalDigits: b)
        var twos = 0
        var fives = 0
        while rest.remainder(dividingBy: 2) == 0 {
            _ = rest.divide(by: 2)
            twos += 1
        }
        while rest.remainder(dividingBy: 5) == 0 {
            _ = rest.divide(by: 5)
            fives += 1
        }
        var modulus = rest
        for _ in 0..<max(0, twos - shift) { modulus.multiply(by: 2, adding: 0) }
        for _ in 0..<max(0, fives - shift) { modulus.multiply(by: 5, adding: 0) }
        if modulus.isOne { return true }
        var remainder = Limbs()
        for digit in a {
            remainder.multiply(by: 10, adding: UInt32(digit))
            // remainder < 10 · modulus here, so at most nine subtractions bring it below.
            while !remainder.isLess(than: modulus) { remainder.subtract(modulus) }
        }
        return remainder.isZero
    }

    /// An unsigned integer, little-endian 32-bit limbs, no high zero limbs (zero is `[]`).
    struct Limbs {
        var limbs: [UInt32] = []

        init() {}

        init(decimalDigits: [UInt8]) {
            for digit in decimalDigits { multiply(by: 10, adding: UInt32(digit)) }
        }

        var isZero: Bool { limbs.isEmpty }
        var isOne: Bool { limbs.count == 1 && limbs[0] == 1 }

        mutating func multiply(by factor: UInt32, adding addend: UInt32) {
            var carry = UInt64(addend)
            for index in limbs.indices {
                let product = UInt64(limbs[index]) * UInt64(factor) + carry
                limbs[index] = UInt32(truncatingIfNeeded: product)
                carry = product >> 32
            }
            if carry != 0 { limbs.append(UInt32(carry)) }
        }

        /// Divides in place and returns the remainder.
        mutating func divide(by divisor: UInt32) -> UInt32 {
            var remainder: UInt64 = 0
            for index in limbs.indices.reversed() {
                let current = remainder << 32 | UInt64(limbs[index])
                limbs[index] = UInt32(current / UInt64(divisor))
                remainder = current % UInt64(divisor)
            }
            while limbs.last == 0 { limbs.removeLast() }
            return UInt32(remainder)
        }

        func remainder(dividingBy divisor: UInt32) -> UInt32 {
            var remainder: UInt64 = 0
            for limb in limbs.reversed() { remainder = (remainder << 32 | UInt64(limb)) % UInt64(divisor) }
            return UInt32(remainder)
        }

        func isLess(than other: Limbs) -> Bool {
            if limbs.count != other.limbs.count { return limbs.count < other.limbs.count }
            for index in limbs.indices.reversed() where limbs[index] != other.limbs[index] {
                return limbs[index] < other.limbs[index]
            }
            return false
        }

        /// `self -= other`, for `other ≤ self`.
        mutating func subtract(_ other: Limbs) {
            var borrow: Int64 = 0
            for index in limbs.indices {
                var difference = Int64(limbs[index]) - borrow - Int64(index < other.limbs.count ? other.limbs[index] : 0)
                borrow = 0
                if difference < 0 {
                    difference += 1 << 32
                    borrow = 1
                }
                limbs[index] = UInt32(difference)
            }
            while limbs.last == 0 { limbs.removeLast() }
        }
    }
}
