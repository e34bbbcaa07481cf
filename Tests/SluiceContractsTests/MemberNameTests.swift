import SluiceContracts
import SluiceTestFixtures
import Testing

/// JSON compares member names code point by code point; Swift's `String ==` and `String`
/// hashing use Unicode canonical equivalence. Every case here pairs two names that Swift calls
/// equal but JSON does not: `q\u0323\u0301` / `q\u0301\u0323` (combining marks in another
/// order), `é` / `e\u0301` (NFC / NFD), `K` / `\u212A` (KELVIN SIGN, a canonical singleton).
/// The documents are written with JSON `\u` escapes so the bytes are exactly the ones named.
@Suite("Member names compare by code point, never by canonical equivalence")
struct MemberNameTests {
    func schema(_ text: String) throws -> JSONSchema {
        try JSONSchema(try JSONParser.parse(text), source: "member-names")
    }

    func isValid(_ schemaText: String, _ instanceText: String) throws -> Bool {
        try schema(schemaText).isValid(try JSONParser.parse(instanceText))
    }

    func object(_ text: String) throws -> JSONObject {
        guard case .object(let object) = try JSONParser.parse(text) else {
            throw SluiceError(code: "NOT_AN_OBJECT", message: text)
        }
        return object
    }

    @Test("properties: an equivalent but different name is an unknown member")
    func properties() throws {
        #expect(try isValid(#"{"properties":{"q\u0323\u0301":{"type":"string"}}}"#, #"{"q\u0301\u0323":1}"#))
        #expect(try !isValid(#"{"properties":{"q\u0323\u0301":{"type":"string"}}}"#, #"{"q\u0323\u0301":1}"#))
        #expect(try isValid(#"{"properties":{"K":{"type":"string"}}}"#, #"{"\u212A":1}"#))
        // The member-by-member path (taken when patternProperties or additionalProperties is present).
        #expect(try isValid(#"{"properties":{"K":{"type":"string"}},"patternProperties":{"^x":true}}"#, #"{"\u212A":1}"#))
    }

    @Test("Two equivalent names in one schema's properties keep their own subschemas")
    func equivalentPropertiesInOneSchema() throws {
        let text = #"{"properties":{"q\u0323\u0301":{"type":"string"},"q\u0301\u0323":{"type":"integer"}}}"#
        #expect(try isValid(text, #"{"q\u0323\u0301":"s","q\u0301\u0323":1}"#))
        #expect(try !isValid(text, #"{"q\u0301\u0323":"s"}"#))
        #expect(try !isValid(text, #"{"q\u0323\u0301":1}"#))
        let kelvin = #"{"properties":{"K":{"type":"string"},"\u212A":{"type":"integer"}}}"#
        #expect(try isValid(kelvin, #"{"K":"s","\u212A":1}"#))
        #expect(try !isValid(kelvin, #"{"\u212A":"s"}"#))
    }

    @Test("The parser keeps NFC and NFD names apart in an object of more than 32 members")
    func largeObject() throws {
        var members = (0..<31).map { #""m\#($0)":\#($0)"# }
        members += [#""\u00e9":1"#, #""e\u0301":2"#]
        let text = "{" + members.joined(separator: ",") + "}"
        let parsed = try object(text)
        #expect(parsed.count == 33)
        #expect(parsed["\u{E9}"] == .number(JSONNumber(Int64(1))))
        #expect(parsed["e\u{301}"] == .number(JSONNumber(Int64(2))))
        #expect(try isValid(#"{"minProperties":33}"#, text))
    }

    @Test("The parser keeps equivalent names of equal length apart in a small object")
    func smallObject() throws {
        let text = #"{"aaaq\u0323\u0301aaaaaaaaaaaaaaaaaaaaaa":1,"aaaq\u0301\u0323aaaaaaaaaaaaaaaaaaaaaa":2}"#
        let parsed = try object(text)
        #expect(parsed.count == 2)
        #expect(parsed["aaaq\u{323}\u{301}aaaaaaaaaaaaaaaaaaaaaa"] == .number(JSONNumber(Int64(1))))
        #expect(parsed["aaaq\u{301}\u{323}aaaaaaaaaaaaaaaaaaaaaa"] == .number(JSONNumber(Int64(2))))
        #expect(try isValid(#"{"minProperties":2}"#, text))
        #expect(try object(#"{"K":1,"\u212A":2}"#).count == 2)
    }

    @Test("A byte-equal repeated name still folds, last value wins, in small and large objects")
    func duplicatesStillFold() throws {
        #expect(try object(#"{"\u00e9":1,"\u00e9":2}"#).members.count == 1)
        #expect(try object(#"{"\u00e9":1,"\u00e9":2}"#)["\u{E9}"] == .number(JSONNumber(Int64(2))))
        let large = "{" + (0..<40).map { #""k\#($0 % 35)":\#($0)"# }.joined(separator: ",") + "}"
        #expect(try object(large).count == 35)
    }

    @Test("JSONObject's String subscript and initializer compare by code point")
    func objectAPI() throws {
        let built = JSONObject([("\u{E9}", .bool(true)), ("e\u{301}", .bool(false)), ("K", .null)])
        #expect(built.count == 3)
        #expect(built["e\u{301}"] == .bool(false))
        #expect(built["\u{212A}"] == nil)
        let parsed = try object(#"{"\u212A":1}"#)
        #expect(parsed["K"] == nil)
        #expect(parsed["\u{212A}"] == .number(JSONNumber(Int64(1))))
    }

    @Test("required names a member by its code points")
    func required() throws {
        #expect(try !isValid(#"{"required":["q\u0323\u0301"]}"#, #"{"q\u0301\u0323":1}"#))
        #expect(try !isValid(#"{"required":["K"]}"#, #"{"\u212A":1}"#))
        #expect(try isValid(#"{"required":["\u212A"]}"#, #"{"\u212A":1}"#))
    }

    @Test("dependentRequired: both the trigger and the required names compare by code point")
    func dependentRequired() throws {
        #expect(try !isValid(#"{"dependentRequired":{"a":["q\u0323\u0301"]}}"#, #"{"a":1,"q\u0301\u0323":2}"#))
        #expect(try isValid(#"{"dependentRequired":{"q\u0323\u0301":["b"]}}"#, #"{"q\u0301\u0323":1}"#))
        #expect(try !isValid(#"{"dependentRequired":{"K":["b"]}}"#, #"{"K":1,"\u212A":2}"#) == true)
        #expect(try isValid(#"{"dependentRequired":{"K":["b"]}}"#, #"{"\u212A":2}"#))
    }

    @Test("additionalProperties: false refuses a name equivalent to a declared one")
    func additionalProperties() throws {
        #expect(try !isValid(#"{"properties":{"q\u0323\u0301":true},"additionalProperties":false}"#, #"{"q\u0301\u0323":1}"#))
        #expect(try !isValid(#"{"properties":{"K":true},"additionalProperties":false}"#, #"{"\u212A":1}"#))
        #expect(try isValid(#"{"properties":{"K":true},"additionalProperties":false}"#, #"{"K":1}"#))
    }

    @Test("patternProperties: two equivalent pattern keys keep their own subschemas")
    func patternProperties() throws {
        let text = #"{"patternProperties":{"^q\u0323\u0301$":{"type":"string"},"^q\u0301\u0323$":{"type":"integer"}}}"#
        #expect(try isValid(text, #"{"q\u0323\u0301":"s","q\u0301\u0323":1}"#))
        #expect(try !isValid(text, #"{"q\u0323\u0301":1}"#))
        #expect(try isValid(#"{"patternProperties":{"^K$":{"type":"string"}}}"#, #"{"\u212A":1}"#))
    }

    @Test("const, enum and uniqueItems: objects with equivalent names are different values")
    func valueEquality() throws {
        #expect(try !isValid(#"{"const":{"q\u0323\u0301":1}}"#, #"{"q\u0301\u0323":1}"#))
        #expect(try isValid(#"{"const":{"q\u0323\u0301":1}}"#, #"{"q\u0323\u0301":1}"#))
        #expect(try !isValid(#"{"const":{"K":1}}"#, #"{"\u212A":1}"#))
        #expect(try !isValid(#"{"enum":[{"\u00e9":1}]}"#, #"{"e\u0301":1}"#))
        #expect(try !isValid(#"{"enum":[{"K":1}]}"#, #"{"\u212A":1}"#))
        #expect(try isValid(#"{"uniqueItems":true}"#, #"[{"q\u0323\u0301":1},{"q\u0301\u0323":1}]"#))
        #expect(try isValid(#"{"uniqueItems":true}"#, #"[{"K":1},{"\u212A":1}]"#))
        #expect(try !isValid(#"{"uniqueItems":true}"#, #"[{"K":1,"a":2},{"a":2,"K":1}]"#))
        #expect(try JSONParser.parse(#"{"K":1}"#) != JSONParser.parse(#"{"\u212A":1}"#))
    }

    @Test("Envelope: a field name equivalent to event_id, but not byte-equal, is not event_id")
    func envelopeFieldNames() throws {
        let decoder = EnvelopeDecoder(registry: try EnvelopeTestFixtures.registry())
        let valid = String(decoding: EnvelopeTestFixtures.envelope(), as: UTF8.self)
        #expect(valid.contains(#""event_id":"#))
        let renamed = valid.replacing(#""event_id":"#, with: #""event_i\u0064\u0301":"#)
        let error = #expect(throws: SluiceError.self) { try decoder.decode(Array(renamed.utf8)) }
        #expect(error?.code == .envelopeFieldMissing)
        #expect(error?.path == "/event_id")
    }

    @Test("Envelope: data members with equivalent names both reach the handler")
    func envelopeDataMembers() throws {
        let decoder = EnvelopeDecoder(registry: try EnvelopeTestFixtures.registry())
        let valid = String(decoding: EnvelopeTestFixtures.envelope(), as: UTF8.self)
        #expect(valid.contains(#""data":{"#))
        let extended = valid.replacing(
            #""data":{"#, with: #""data":{"x_q\u0323\u0301_aaaaaaaaaaaaaaaaaaaa":1,"x_q\u0301\u0323_aaaaaaaaaaaaaaaaaaaa":2,"#)
        let envelope = try decoder.decode(Array(extended.utf8))
        guard case .object(let data) = envelope.data else {
            Issue.record("data is not an object")
            return
        }
        #expect(data["x_q\u{323}\u{301}_aaaaaaaaaaaaaaaaaaaa"] == .number(JSONNumber(Int64(1))))
        #expect(data["x_q\u{301}\u{323}_aaaaaaaaaaaaaaaaaaaa"] == .number(JSONNumber(Int64(2))))
    }

    @Test("Compatibility gate: required names and $ref targets compare by code point")
    func compatibility() throws {
        let old = #"{"properties":{"\u00e9":{},"e\u0301":{}},"required":["\u00e9"]}"#
        let new = #"{"properties":{"\u00e9":{},"e\u0301":{}},"required":["e\u0301"]}"#
        let changes = SchemaCompatibility.compare(try JSONParser.parse(old), try JSONParser.parse(new))
        #expect(changes.contains { $0.rule == "required_field_added" && $0.path == "/properties/e\u{301}" }, "\(changes)")
        #expect(changes.contains { $0.rule == "field_made_optional" && $0.path == "/properties/\u{E9}" }, "\(changes)")
        // A $ref to an equivalent name while the first is being compared is no cycle. (The
        // $defs comparison reports this change too, so this part guards the outcome, not the
        // ref-cycle set alone.)
        let refs = ##"{"$ref":"#/$defs/\u00e9","$defs":{"\u00e9":{"properties":{"p":{"$ref":"#/$defs/e\u0301"}}},"e\u0301":{"type":"TYPE"}}}"##
        let typeChanges = SchemaCompatibility.compare(
            try JSONParser.parse(refs.replacing("TYPE", with: "string")), try JSONParser.parse(refs.replacing("TYPE", with: "integer")))
        #expect(typeChanges.contains { $0.rule == "type_changed" }, "\(typeChanges)")
    }
}
