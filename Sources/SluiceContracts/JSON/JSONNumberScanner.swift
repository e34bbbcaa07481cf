/// Reads one RFC 8259 number literal into a ``JSONNumber``.
///
/// Digits go into a 64-bit significand while they fit; trailing zeros are counted instead of
/// multiplied in, so the significand comes out normalized and `1.50`, `1.5` and `15e-1` are
/// the same value. The `Double` is computed exactly (Clinger's fast path) when the
/// significand has at most 53 bits and the exponent is small, and by the standard library's
/// correctly rounded conversion otherwise.
struct JSONNumberScanner {
    let input: UnsafeBufferPointer<UInt8>
    var position: Int

    private static let powersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    private static let integerPowersOfTen: [UInt64] = [
        1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000,
        1_000_000_000, 10_000_000_000, 100_000_000_000, 1_000_000_000_000,
        10_000_000_000_000, 100_000_000_000_000, 1_000_000_000_000_000,
        10_000_000_000_000_000, 100_000_000_000_000_000, 1_000_000_000_000_000_000,
        10_000_000_000_000_000_000,
    ]

    @inline(__always)
    private func isDigit(at index: Int) -> Bool {
        index < input.count && input[index] &- UInt8(ascii: "0") < 10
    }

    private func failure(_ message: String, at offset: Int) -> JSONParseError {
        JSONParseError(kind: .syntax, offset: offset, message: message)
    }

    /// Scans the literal starting at ``position`` and leaves ``position`` just after it.
    mutating func scan() throws(JSONParseError) -> JSONNumber {
        let start = position
        let end = input.count
        var negative = false
        if input[position] == UInt8(ascii: "-") {
            negative = true
            position += 1
        }
        guard isDigit(at: position) else {
            throw failure("expected a digit in a number", at: position)
        }
        var significand: UInt64 = 0
        var pendingZeros = 0  // zeros seen after the last non-zero digit, not yet multiplied in
        var fractionDigits = 0  // fraction digits held by significand and pendingZeros
        var droppedIntegerDigits = 0
        var inexact = false
        var droppedFraction = false

        @inline(__always)
        func take(_ digit: UInt64, fraction: Bool) {
            if inexact {
                if fraction {
                    if digit != 0 { droppedFraction = true }
                } else {
                    droppedIntegerDigits += 1
                }
                return
            }
            if digit == 0 {
                pendingZeros += 1
                if fraction { fractionDigits += 1 }
                return
            }
            if significand == 0 {
                significand = digit
                pendingZeros = 0
                if fraction { fractionDigits += 1 }
                return
            }
            let scale = pendingZeros + 1
            if scale < Self.integerPowersOfTen.count {
                let (product, overflow) = significand.multipliedReportingOverflow(
                    by: Self.integerPowersOfTen[scale])
                if !overflow {
                    let (sum, carry) = product.addingReportingOverflow(digit)
                    if !carry {
                        significand = sum
                        pendingZeros = 0
                        if fraction { fractionDigits += 1 }
                        return
                    }
                }
            }
            // Too many significant digits for 64 bits: keep the leading ones and the magnitude.
            inexact = true
            if fraction { droppedFraction = true } else { droppedIntegerDigits += 1 }
        }

        if input[position] == UInt8(ascii: "0") {
            position += 1
            if isDigit(at: position) {
                throw failure("a number must not have a leading zero", at: start)
            }
        } else {
            while position < end {
                let digit = input[position] &- UInt8(ascii: "0")
                if digit >= 10 { break }
                take(UInt64(digit), fraction: false)
                position += 1
            }
        }
        if position < end, input[position] == UInt8(ascii: ".") {
            position += 1
            guard isDigit(at: position) else {
                throw failure("expected a digit after the decimal point", at: position)
            }
            while position < end {
                let digit = input[position] &- UInt8(ascii: "0")
                if digit >= 10 { break }
                take(UInt64(digit), fraction: true)
                position += 1
            }
        }
        var literalExponent = 0
        if position < end, input[position] | 0x20 == UInt8(ascii: "e") {
            position += 1
            var exponentNegative = false
            if position < end, input[position] == UInt8(ascii: "-") || input[position] == UInt8(ascii: "+") {
                exponentNegative = input[position] == UInt8(ascii: "-")
                position += 1
            }
            guard isDigit(at: position) else {
                throw failure("expected a digit in the exponent", at: position)
            }
            while position < end {
                let digit = input[position] &- UInt8(ascii: "0")
                if digit >= 10 { break }
                // Clamp: any exponent this large already means overflow or underflow.
                if literalExponent < 1_000_000_000 { literalExponent = literalExponent * 10 + Int(digit) }
                position += 1
            }
            if exponentNegative { literalExponent = -literalExponent }
        }

        let exponent = pendingZeros + droppedIntegerDigits - fractionDigits + literalExponent
        var flags: UInt8 = negative ? JSONNumber.negativeFlag : 0
        if droppedFraction { flags |= JSONNumber.droppedFractionFlag }
        if significand == 0 {
            return JSONNumber(
                doubleValue: negative ? -0.0 : 0.0, significand: 0, exponent: 0,
                flags: flags & ~JSONNumber.droppedFractionFlag)
        }
        let exponentFits = exponent > -1_000_000_000 && exponent < 1_000_000_000
        var wideDigits: WideDigits?
        var wideExponent = 0
        if inexact && exponentFits {
            // Too many digits for 64 bits: keep them all instead of rounding (rare, so the
            // literal is simply read a second time).
            (wideDigits, wideExponent) = Self.allDigits(
                UnsafeBufferPointer(rebasing: input[start..<position]), literalExponent: literalExponent)
            flags &= ~JSONNumber.droppedFractionFlag
        } else if inexact || !exponentFits {
            flags |= JSONNumber.inexactFlag
        }

        var double: Double
        if !inexact && significand <= 1 << 53 && exponent >= -22 && exponent <= 22 {
            double =
                exponent >= 0
                ? Double(significand) * Self.powersOfTen[exponent]
                : Double(significand) / Self.powersOfTen[-exponent]
        } else {
            let literal = String(
                decoding: UnsafeBufferPointer(rebasing: input[start..<position]), as: UTF8.self)
            guard let parsed = Double(literal) else {
                throw failure("number out of range", at: start)
            }
            double = parsed.magnitude
        }
        if negative { double = -double }
        if let wideDigits {
            return JSONNumber(
                doubleValue: double, significand: significand, exponent: Int32(wideExponent), flags: flags,
                wideDigits: wideDigits)
        }
        return JSONNumber(
            doubleValue: double, significand: significand,
            exponent: exponentFits ? Int32(exponent) : (exponent > 0 ? 1_000_000_000 : -1_000_000_000),
            flags: flags)
    }

    /// Every significant digit of a literal already known to be well formed, and the exponent
    /// that goes with them: `0.00120e5` gives `[1, 2]` and `-1`.
    private static func allDigits(_ literal: UnsafeBufferPointer<UInt8>, literalExponent: Int) -> (WideDigits, Int) {
        var digits: [UInt8] = []
        digits.reserveCapacity(literal.count)
        var fractionDigits = 0
        var inFraction = false
        for byte in literal {
            if byte == UInt8(ascii: ".") {
                inFraction = true
            } else if byte | 0x20 == UInt8(ascii: "e") {
                break
            } else if byte &- UInt8(ascii: "0") < 10 {
                let digit = byte - UInt8(ascii: "0")
                if inFraction { fractionDigits += 1 }
                // Leading zeros carry no value (and in a fraction only shift the exponent).
                if digits.isEmpty && digit == 0 { continue }
                digits.append(digit)
            }
        }
        var trailingZeros = 0
        while digits.last == 0 {
            digits.removeLast()
            trailingZeros += 1
        }
        return (WideDigits(digits), literalExponent - fractionDigits + trailingZeros)
    }
}
