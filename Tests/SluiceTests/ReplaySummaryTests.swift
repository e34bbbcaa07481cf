import Foundation
import Sluice
import Testing

/// What a replay's summary says: a live run's wording, a dry run's own, and an empty replay.
@Suite("The replay summary: live and dry-run wording, result lines, empty replays")
struct ReplaySummaryTests {
    static func summary(dryRun: Bool, outcomes: [RecordOutcome]) -> ReplaySummary {
        var summary = ReplaySummary()
        summary.dryRun = dryRun
        for (index, outcome) in outcomes.enumerated() {
            summary.add(Record(topic: "billing", partition: 0, offset: Offset(Int64(100 + index))), outcome)
        }
        return summary
    }

    static let mixed: [RecordOutcome] = [.handled, .handled, .duplicate, .deadLettered("PAYLOAD_SCHEMA_VIOLATION")]

    @Test("A live run keeps its wording: handled, dead-lettered, result: FAILED or OK")
    func liveWording() {
        let failed = Self.summary(dryRun: false, outcomes: Self.mixed).rendered
        #expect(failed == """
            replay finished: 4 records read, 2 handled, 1 skipped as duplicates, 0 skipped by policy, 1 dead-lettered
              dead-lettered PAYLOAD_SCHEMA_VIOLATION: 1
              billing[0]: offsets 100…103: 4 read, 2 handled, 1 duplicates, 0 skipped, 1 dead-lettered
            result: FAILED (1 dead-lettered, 0 without outcome)
            """)
        let ok = Self.summary(dryRun: false, outcomes: [.handled])
        #expect(ok.isSuccess && ok.rendered.hasSuffix("\nresult: OK"))
    }

    @Test("A dry run says what would happen, and its result line says it wrote nothing")
    func dryRunWording() {
        let dry = Self.summary(dryRun: true, outcomes: Self.mixed)
        #expect(!dry.isSuccess)
        #expect(dry.rendered == """
            replay finished (dry run, nothing written): 4 records read, 2 would be handled, 1 skipped as duplicates, 0 skipped by policy, 1 would be dead-lettered
              would be dead-lettered PAYLOAD_SCHEMA_VIOLATION: 1
              billing[0]: offsets 100…103: 4 read, 2 would be handled, 1 duplicates, 0 skipped, 1 would be dead-lettered
            result: WOULD DEAD-LETTER 1 (dry run, nothing written)
            """)
        #expect(!dry.rendered.contains("FAILED"))
        let clean = Self.summary(dryRun: true, outcomes: [.handled, .duplicate])
        #expect(clean.isSuccess && clean.rendered.hasSuffix("\nresult: OK (dry run, nothing written)"))
        var cut = Self.summary(dryRun: true, outcomes: [.handled, .abandoned])
        cut.interrupted = true
        #expect(!cut.isSuccess && cut.rendered.hasSuffix("\nresult: INCOMPLETE (1 without outcome, interrupted) (dry run, nothing written)"))
    }

    @Test("A replay that matched no record fails when records are required (the command without --allow-empty), and says so")
    func empty() {
        var empty = ReplaySummary()
        #expect(empty.matchedNothing && empty.isSuccess, "the library's default: an empty replay succeeds")
        empty.requiresRecords = true
        #expect(!empty.isSuccess)
        #expect(empty.rendered.contains("\n  no record matched the range\n"))
        #expect(empty.rendered.hasSuffix("\nresult: EMPTY (no record matched; --allow-empty accepts that)"))
        empty.dryRun = true
        #expect(empty.rendered.hasSuffix("\nresult: EMPTY (no record matched; --allow-empty accepts that) (dry run, nothing written)"))

        var resumed = ReplaySummary()
        resumed.requiresRecords = true
        resumed.alreadyReplayed = 40
        #expect(resumed.isSuccess, "records passed over for the checkpoint matched")
        #expect(resumed.rendered.contains("40 records passed over: the checkpoint covers them"))
    }

    @Test("A source that failed is named in the summary and fails the replay")
    func sourceFailure() {
        var summary = Self.summary(dryRun: false, outcomes: [])
        summary.interrupted = true
        summary.failure = "REPLAY_TIMESTAMP_LOOKUP_CONTRADICTED: billing[0]: …"
        #expect(!summary.isSuccess)
        #expect(summary.rendered.contains("\n  stopped by an error: REPLAY_TIMESTAMP_LOOKUP_CONTRADICTED: billing[0]: …\n"))
        #expect(summary.rendered.hasSuffix("result: FAILED (0 dead-lettered, 0 without outcome, interrupted)"))
    }
}
