import SluiceContracts
import SluiceTestFixtures
import Testing

@Suite("Core record values")
struct RecordTests {
    @Test("Offset's logical positions print by name and `next` is the commit position")
    func offsets() {
        #expect(Offset.beginning.description == "beginning")
        #expect(Offset(41).next == Offset(42))
        #expect(!Offset.end.isConcrete && Offset(0).isConcrete)
    }

    @Test("A record's header lookup returns the last header of that name")
    func headerLookup() {
        let record = Record(
            topic: "t", partition: 0, offset: 0,
            headers: [RecordHeader(name: "a", string: "1"), RecordHeader(name: "a", string: "2"), RecordHeader(name: "n", value: nil)])
        #expect(record.header("a") == Array("2".utf8))
        #expect(record.header("n") == nil)
        #expect(record.topicPartition == TopicPartition(topic: "t", partition: 0))
    }
}
