/// A JSON number, exact enough for JSON Schema.
///
/// Integers that fit in `Int64` are kept exactly. Every number written with few enough digits is
/// also kept as a decimal (`significand × 10^exponent`), so `multipleOf` can be decided exactly
/// for decimal literals such as `0.0075` and `0.0001`, where binary floating point cannot.
/// Equality is by mathematical value: `1`, `1.0` and `10e-1` are equal.
public struct JSONNumber: Sendable, CustomStringConvertible {
    /// The number as a `Double` (rounded for very large or very precise literals).
    public var doubleValue: Double
    /// The exact value when the number is an integer that fits in `Int64` (`1.0` counts as one).
    public var int64Value: Int64?
    /// The exact decimal value, when the literal's digits fit: `significand × 10^exponent`.
    public var decimal: (significand: Int64, exponent: Int)?

    public init(_ value: Int64) {
        self.doubleValue = Double(value)
        self.int64Value = value
        self.decimal = (value, 0)
    }

    public init(_ value: Double) {
        self.doubleValue = value
        if value.rounded() == value, let exact = Int64(exactly: value) {
            self.int64Value = exact
            self.decimal = (exact, 0)
        } else {
            self.int64Value = nil
            self.decimal = nil
        }
    }

    /// A number parsed from a literal whose decimal digits are known.
    init(double: Double, significand: Int64?, exponent: Int) {
        self.doubleValue = double
        if let significand {
            var significand = significand
            var exponent = exponent
            // Normalize so equal values have equal decimals: no trailing zeros in the significand.
            while significand != 0 && significand % 10 == 0 && exponent < 0 {
                significand /= 10
                exponent += 1
            }
            if significand == 0 { exponent = 0 }
            self.decimal = (significand, exponent)
            if exponent >= 0 {
                var value: Int64? = significand
                for _ in 0..<min(exponent, 19) {
                    value = value.flatMap { let (result, overflow) = $0.multipliedReportingOverflow(by: 10); return overflow ? nil : result }
                }
                self.int64Value = exponent > 18 && significand != 0 ? nil : value
            } else {
                self.int64Value = nil
            }
        } else {
            self.decimal = nil
            self.int64Value = (double.rounded() == double) ? Int64(exactly: double) : nil
        }
    }

    /// Whether the number is mathematically an integer (`1.0` is; `1.5` is not).
    public var isInteger: Bool {
        if int64Value != nil { return true }
        if let decimal { return decimal.exponent >= 0 }
        return doubleValue.isFinite && doubleValue.rounded() == doubleValue
    }

    public var description: String {
        if let int64Value { return String(int64Value) }
        return String(doubleValue)
    }

    /// Whether `self` is an integer multiple of `divisor` (which must be > 0).
    public func isMultiple(of divisor: JSONNumber) -> Bool {
        if let a = decimal, let b = divisor.decimal, b.significand != 0 {
            // Bring both to the smaller exponent and compare integers, when that fits.
            let exponent = min(a.exponent, b.exponent)
            if let left = Self.scale(a.significand, by: a.exponent - exponent),
                let right = Self.scale(b.significand, by: b.exponent - exponent)
            {
                return left % right == 0
            }
        }
        let quotient = doubleValue / divisor.doubleValue
        guard quotient.isFinite else { return false }
        return quotient.rounded() == quotient
    }

    private static func scale(_ value: Int64, by power: Int) -> Int64? {
        guard power >= 0, power <= 18 else { return nil }
        var result = value
        for _ in 0..<power {
            let (next, overflow) = result.multipliedReportingOverflow(by: 10)
            if overflow { return nil }
            result = next
        }
        return result
    }
}

extension JSONNumber: Hashable {
    public static func == (lhs: JSONNumber, rhs: JSONNumber) -> Bool {
        if let a = lhs.int64Value, let b = rhs.int64Value { return a == b }
        if let a = lhs.decimal, let b = rhs.decimal { return a.significand == b.significand && a.exponent == b.exponent }
        return lhs.doubleValue == rhs.doubleValue
    }

    public func hash(into hasher: inout Hasher) {
        // Equal numbers must hash alike whichever exact form they carry: hash the Double.
        hasher.combine(doubleValue == 0 ? 0 : doubleValue)
    }

    /// Orders by value (for minimum/maximum).
    public static func < (lhs: JSONNumber, rhs: JSONNumber) -> Bool {
        if let a = lhs.int64Value, let b = rhs.int64Value { return a < b }
        return lhs.doubleValue < rhs.doubleValue
    }
}
