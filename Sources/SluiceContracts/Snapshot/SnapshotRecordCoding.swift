import Foundation

/// Reads and writes one line of a snapshot file: one ``Record`` as one JSON object.
///
/// The format is the contract's (what `sluice export` writes and replay reads):
///
/// ```
/// {"topic":"billing","partition":0,"offset":42,"timestamp":1738324800000,"key":"inv_456",
///  "headers":[["trace","abc"],["blob",{"b64":"AAE="}],["empty",null]],"value":"{\"event_id\":…}"}
/// ```
///
/// Bytes round-trip exactly. A key, header value or value that is valid UTF-8 is written as a
/// JSON string; one that is not is written base64-encoded as `key_b64`, `{"b64":…}` or
/// `value_b64`. A null key, header value or value is JSON `null`; a record without a
/// timestamp has `"timestamp":null`. Members are written in a fixed order, so exporting what
/// was read reproduces the line byte for byte.
///
/// The timestamp type is not part of the format: read records get ``TimestampType/createTime``.
public enum SnapshotRecordCoding {
    /// The line for `record`, without a trailing newline.
    public static func encode(_ record: Record) -> String {
        var line = "{\"topic\":"
        appendString(record.topic, to: &line)
        line += ",\"partition\":\(record.partition),\"offset\":\(record.offset.rawValue),\"timestamp\":"
        line += record.timestamp.map { String($0.milliseconds) } ?? "null"
        appendBytes(record.key, name: "key", to: &line)
        line += ",\"headers\":["
        for (index, header) in record.headers.enumerated() {
            if index > 0 { line += "," }
            line += "["
            appendString(header.name, to: &line)
            line += ","
            if let value = header.value {
                if let text = String(validating: value, as: UTF8.self) {
                    appendString(text, to: &line)
                } else {
                    line += "{\"b64\":\"\(Data(value).base64EncodedString())\"}"
                }
            } else {
                line += "null"
            }
            line += "]"
        }
        line += "]"
        appendBytes(record.value, name: "value", to: &line)
        line += "}"
        return line
    }

    /// Reads one line (without its newline; a trailing `\r` is tolerated).
    ///
    /// - Throws: `SNAPSHOT_LINE_INVALID` with a JSON pointer to the offending member.
    public static func decode(line: some Collection<UInt8>) throws(SluiceError) -> Record {
        var lineBytes = Array(line)
        if lineBytes.last == UInt8(ascii: "\r") { lineBytes.removeLast() }
        // A snapshot line holds a whole record value as an escaped string, so it may be larger
        // than any envelope; the envelope limits apply later, to the value itself.
        let limits = JSONParseLimits(
            maxBytes: max(lineBytes.count, 1), maxDepth: 8, maxStringLength: max(lineBytes.count, 1))
        let document: JSONValue
        do throws(JSONParseError) {
            document = try JSONParser.parse(lineBytes, limits: limits)
        } catch {
            throw invalid("the line is not JSON: \(error)", path: "")
        }
        guard case .object(let object) = document else {
            throw invalid("the line is not a JSON object", path: "")
        }

        guard case .string(let topic) = object["topic"], !topic.isEmpty else {
            throw invalid("topic must be a non-empty string", path: "/topic")
        }
        guard case .number(let partitionNumber) = object["partition"],
            let partitionValue = partitionNumber.int64Value, let partition = Int32(exactly: partitionValue),
            partition >= 0
        else {
            throw invalid("partition must be an integer ≥ 0", path: "/partition")
        }
        guard case .number(let offsetNumber) = object["offset"], let offset = offsetNumber.int64Value,
            offset >= 0
        else {
            throw invalid("offset must be an integer ≥ 0", path: "/offset")
        }
        var timestamp: RecordTimestamp?
        switch object["timestamp"] {
        case nil, .null?:
            timestamp = nil
        case .number(let number)?:
            guard let milliseconds = number.int64Value else {
                throw invalid("timestamp must be integer milliseconds", path: "/timestamp")
            }
            timestamp = RecordTimestamp(milliseconds: milliseconds, type: .createTime)
        default:
            throw invalid("timestamp must be integer milliseconds or null", path: "/timestamp")
        }
        let key = try bytes(of: object, name: "key")
        let value = try bytes(of: object, name: "value")

        var headers: [RecordHeader] = []
        switch object["headers"] {
        case nil, .null?:
            break
        case .array(let elements)?:
            headers.reserveCapacity(elements.count)
            for (index, element) in elements.enumerated() {
                headers.append(try header(element, path: "/headers/\(index)"))
            }
        default:
            throw invalid("headers must be an array of [name, value] pairs", path: "/headers")
        }

        return Record(
            topic: topic, partition: partition, offset: Offset(offset), timestamp: timestamp, key: key,
            value: value, headers: headers)
    }

    /// Reads one line given as text.
    public static func decode(line: String) throws(SluiceError) -> Record {
        try decode(line: Array(line.utf8))
    }

    /// Whether a parsed line looks like a snapshot record rather than a bare envelope: it has a
    /// `topic` and a `value` or `value_b64` member.
    public static func isSnapshotRecord(_ document: JSONValue) -> Bool {
        guard case .object(let object) = document, object["topic"] != nil else { return false }
        return object["value"] != nil || object["value_b64"] != nil
    }

    // MARK: - Reading

    private static func bytes(of object: JSONObject, name: String) throws(SluiceError) -> [UInt8]? {
        let plain = object[name]
        let encoded = object[name + "_b64"]
        switch (plain, encoded) {
        case (.some, .some):
            throw invalid("\(name) and \(name)_b64 are both present", path: "/\(name)_b64")
        case (nil, nil), (.null?, nil):
            return nil
        case (.string(let text)?, nil):
            return Array(text.utf8)
        case (.some, nil):
            throw invalid("\(name) must be a string or null", path: "/\(name)")
        case (nil, .string(let base64)?):
            guard let data = Data(base64Encoded: base64) else {
                throw invalid("\(name)_b64 is not valid base64", path: "/\(name)_b64")
            }
            return Array(data)
        case (nil, .some):
            throw invalid("\(name)_b64 must be a base64 string", path: "/\(name)_b64")
        }
    }

    private static func header(_ element: JSONValue, path: String) throws(SluiceError) -> RecordHeader {
        guard case .array(let pair) = element, pair.count == 2, case .string(let name) = pair[0] else {
            throw invalid("a header must be a [name, value] pair", path: path)
        }
        switch pair[1] {
        case .null:
            return RecordHeader(name: name, value: nil)
        case .string(let text):
            return RecordHeader(name: name, value: Array(text.utf8))
        case .object(let object):
            guard object.count == 1, case .string(let base64) = object["b64"],
                let data = Data(base64Encoded: base64)
            else {
                throw invalid("a binary header value must be {\"b64\": <base64>}", path: path + "/1")
            }
            return RecordHeader(name: name, value: Array(data))
        default:
            throw invalid("a header value must be a string, {\"b64\": …} or null", path: path + "/1")
        }
    }

    private static func invalid(_ message: String, path: String) -> SluiceError {
        SluiceError(code: .snapshotLineInvalid, message: message, path: path)
    }

    // MARK: - Writing

    private static func appendBytes(_ bytes: [UInt8]?, name: String, to line: inout String) {
        guard let bytes else {
            line += ",\"\(name)\":null"
            return
        }
        if let text = String(validating: bytes, as: UTF8.self) {
            line += ",\"\(name)\":"
            appendString(text, to: &line)
        } else {
            line += ",\"\(name)_b64\":\"\(Data(bytes).base64EncodedString())\""
        }
    }

    /// Appends `text` as a JSON string: escapes `"`, `\` and control characters, nothing else,
    /// so the output is deterministic and non-ASCII text stays readable.
    static func appendString(_ text: String, to line: inout String) {
        line.unicodeScalars.append("\"")
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": line += "\\\""
            case "\\": line += "\\\\"
            case "\n": line += "\\n"
            case "\r": line += "\\r"
            case "\t": line += "\\t"
            case "\u{08}": line += "\\b"
            case "\u{0C}": line += "\\f"
            case "\u{00}"..."\u{1F}":
                let hex = String(scalar.value, radix: 16, uppercase: false)
                line += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: line.unicodeScalars.append(scalar)
            }
        }
        line.unicodeScalars.append("\"")
    }
}
