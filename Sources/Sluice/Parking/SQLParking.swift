import Foundation

/// The parking tables of the SQL stores (SQLite and PostgreSQL), a migration each store applies
/// after its own first one.
///
/// - `sluice_parked_keys`: one row per parked key of a group and topic, with the failure that
///   parked it and the claim of a release in progress;
/// - `sluice_parked_records`: the key's sequence, each record as one snapshot line (all of its
///   bytes, in the snapshot format), by partition and offset;
/// - `sluice_parked_discards`: who discarded which key's sequence, when, and how many records.
///
/// Parked rows are never pruned by retention.
public enum SQLParkingSchema {
    /// The migration, for both dialects.
    public static let migration = StoreMigration(
        id: "sluice-2-parking",
        sqlite: """
            CREATE TABLE sluice_parked_keys (
                consumer_group TEXT NOT NULL,
                topic TEXT NOT NULL,
                parking_key BLOB NOT NULL,
                partition INTEGER NOT NULL,
                parked_at REAL NOT NULL,
                failure_code TEXT NOT NULL,
                failure_message TEXT NOT NULL,
                failure_handler TEXT,
                failed_at REAL NOT NULL,
                release_claim TEXT,
                release_claimed_at REAL,
                PRIMARY KEY (consumer_group, topic, parking_key)
            ) WITHOUT ROWID;
            CREATE TABLE sluice_parked_records (
                consumer_group TEXT NOT NULL,
                topic TEXT NOT NULL,
                parking_key BLOB NOT NULL,
                partition INTEGER NOT NULL,
                record_offset INTEGER NOT NULL,
                record TEXT NOT NULL,
                parked_at REAL NOT NULL,
                PRIMARY KEY (consumer_group, topic, parking_key, partition, record_offset)
            ) WITHOUT ROWID;
            CREATE TABLE sluice_parked_discards (
                consumer_group TEXT NOT NULL,
                topic TEXT NOT NULL,
                parking_key BLOB NOT NULL,
                records INTEGER NOT NULL,
                failure_code TEXT,
                discarded_by TEXT NOT NULL,
                discarded_at REAL NOT NULL
            );
            """,
        postgresql: """
            CREATE TABLE sluice_parked_keys (
                consumer_group TEXT NOT NULL,
                topic TEXT NOT NULL,
                parking_key BYTEA NOT NULL,
                partition INTEGER NOT NULL,
                parked_at DOUBLE PRECISION NOT NULL,
                failure_code TEXT NOT NULL,
                failure_message TEXT NOT NULL,
                failure_handler TEXT,
                failed_at DOUBLE PRECISION NOT NULL,
                release_claim TEXT,
                release_claimed_at DOUBLE PRECISION,
                PRIMARY KEY (consumer_group, topic, parking_key)
            );
            CREATE TABLE sluice_parked_records (
                consumer_group TEXT NOT NULL,
                topic TEXT NOT NULL,
                parking_key BYTEA NOT NULL,
                partition INTEGER NOT NULL,
                record_offset BIGINT NOT NULL,
                record TEXT NOT NULL,
                parked_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (consumer_group, topic, parking_key, partition, record_offset)
            );
            CREATE TABLE sluice_parked_discards (
                consumer_group TEXT NOT NULL,
                topic TEXT NOT NULL,
                parking_key BYTEA NOT NULL,
                records BIGINT NOT NULL,
                failure_code TEXT,
                discarded_by TEXT NOT NULL,
                discarded_at DOUBLE PRECISION NOT NULL
            );
            """)
}

/// Parking in SQL both stores speak, through the transaction's own `execute` and `query`.
extension SQLTransaction {
    /// `FOR SHARE`/`FOR UPDATE` on PostgreSQL; SQLite has one writer, whose transaction excludes
    /// every other.
    private func lock(_ clause: String) -> String { dialect == .postgresql ? " " + clause : "" }

    private static func keyArguments(_ group: String, _ topic: String, _ key: ParkingKey) -> [SQLValue] {
        [.text(group), .text(topic), .blob(key.bytes)]
    }

    private static var whereKey: String { "consumer_group = ? AND topic = ? AND parking_key = ?" }

    public func parkedKeys(group: String, topic: String, among keys: [ParkingKey]) async throws -> Set<ParkingKey> {
        let distinct = Array(Set(keys))
        guard !distinct.isEmpty else { return [] }
        var found: Set<ParkingKey> = []
        // Bounded lists of placeholders: a group holds at most a few hundred records.
        for chunk in stride(from: 0, to: distinct.count, by: 200).map({ distinct[$0..<min($0 + 200, distinct.count)] }) {
            let placeholders = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
            let rows = try await query(
                "SELECT parking_key FROM sluice_parked_keys WHERE consumer_group = ? AND topic = ? AND parking_key IN (\(placeholders))"
                    + lock("FOR SHARE"),
                [.text(group), .text(topic)] + chunk.map { .blob($0.bytes) })
            for row in rows { if let bytes = row[0].bytes { found.insert(ParkingKey(bytes)) } }
        }
        return found
    }

    public func park(_ record: Record, key: ParkingKey, group: String, failure: ParkingFailure) async throws {
        try await execute(
            """
            INSERT INTO sluice_parked_keys (consumer_group, topic, parking_key, partition, parked_at, failure_code,
                failure_message, failure_handler, failed_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (consumer_group, topic, parking_key) DO NOTHING
            """,
            Self.keyArguments(group, record.topic, key) + [
                .integer(Int64(record.partition)), .real(failure.failedAt.timeIntervalSince1970), .text(failure.code.rawValue),
                .text(failure.message), SQLValue(failure.handler), .real(failure.failedAt.timeIntervalSince1970),
            ])
        // A key parked by another transaction meanwhile, or before: lock it as an append does.
        _ = try await parkedKeys(group: group, topic: record.topic, among: [key])
        try await appendParked(record, key: key, group: group, at: failure.failedAt)
    }

    public func appendParked(_ record: Record, key: ParkingKey, group: String, at time: Date) async throws {
        try await execute(
            """
            INSERT INTO sluice_parked_records (consumer_group, topic, parking_key, partition, record_offset, record, parked_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (consumer_group, topic, parking_key, partition, record_offset) DO NOTHING
            """,
            Self.keyArguments(group, record.topic, key) + [
                .integer(Int64(record.partition)), .integer(record.offset.rawValue), .text(SnapshotRecordCoding.encode(record)),
                .real(time.timeIntervalSince1970),
            ])
    }

    public func parkedKeys(group: String, topic: String?) async throws -> [ParkedKey] {
        let rows = try await query(
            """
            SELECT k.topic, k.parking_key, k.partition, k.parked_at, k.failure_code, k.failure_message, k.failure_handler,
                k.failed_at, k.release_claim,
                (SELECT COUNT(*) FROM sluice_parked_records r
                    WHERE r.consumer_group = k.consumer_group AND r.topic = k.topic AND r.parking_key = k.parking_key) AS records,
                (SELECT MIN(r.record_offset) FROM sluice_parked_records r
                    WHERE r.consumer_group = k.consumer_group AND r.topic = k.topic AND r.parking_key = k.parking_key
                    AND r.partition = k.partition) AS oldest
            FROM sluice_parked_keys k
            WHERE k.consumer_group = ?\(topic == nil ? "" : " AND k.topic = ?")
            ORDER BY k.topic, k.parked_at, k.parking_key
            """,
            [.text(group)] + (topic.map { [.text($0)] } ?? []))
        return try rows.map { row in
            guard let topic = row[0].string, let key = row[1].bytes, let partition = row[2].int, let parkedAt = row[3].double,
                let code = row[4].string, let message = row[5].string, let failedAt = row[7].double, let records = row[9].int
            else { throw Self.unreadable("sluice_parked_keys") }
            return ParkedKey(
                topic: topic, key: ParkingKey(key), partition: Int32(partition), records: records,
                oldestOffset: row[10].int64.map(Offset.init(rawValue:)), parkedAt: Date(timeIntervalSince1970: parkedAt),
                failure: ParkingFailure(
                    code: SluiceError.Code(rawValue: code), message: message, handler: row[6].string,
                    failedAt: Date(timeIntervalSince1970: failedAt)),
                releaseClaim: row[8].string)
        }
    }

    public func parkedRecords(group: String, topic: String, key: ParkingKey, limit: Int?) async throws -> [ParkedRecord] {
        let rows = try await query(
            "SELECT record, parked_at FROM sluice_parked_records WHERE \(Self.whereKey) ORDER BY partition, record_offset"
                + (limit.map { " LIMIT \(max(0, $0))" } ?? ""),
            Self.keyArguments(group, topic, key))
        return try rows.map { row in
            guard let line = row[0].string, let parkedAt = row[1].double else { throw Self.unreadable("sluice_parked_records") }
            return ParkedRecord(record: try SnapshotRecordCoding.decode(line: line), parkedAt: Date(timeIntervalSince1970: parkedAt))
        }
    }

    public func removeParked(group: String, topic: String, key: ParkingKey, partition: Int32, offset: Offset) async throws -> Int {
        let arguments = Self.keyArguments(group, topic, key)
        // The key's row first: an append holding it (FOR SHARE) commits before this goes on, and
        // the count below, a new statement, sees what it appended.
        _ = try await query("SELECT partition FROM sluice_parked_keys WHERE \(Self.whereKey)" + lock("FOR UPDATE"), arguments)
        try await execute(
            "DELETE FROM sluice_parked_records WHERE \(Self.whereKey) AND partition = ? AND record_offset = ?",
            arguments + [.integer(Int64(partition)), .integer(offset.rawValue)])
        let remaining = try await query("SELECT COUNT(*) FROM sluice_parked_records WHERE \(Self.whereKey)", arguments).first?[0].int ?? 0
        if remaining == 0 { try await execute("DELETE FROM sluice_parked_keys WHERE \(Self.whereKey)", arguments) }
        return remaining
    }

    public func claimParkedKey(
        group: String, topic: String, key: ParkingKey, claimant: String, at time: Date, staleBefore: Date
    ) async throws -> ParkingClaim {
        let arguments = Self.keyArguments(group, topic, key)
        let changed = try await execute(
            """
            UPDATE sluice_parked_keys SET release_claim = ?, release_claimed_at = ?
            WHERE \(Self.whereKey) AND (release_claim IS NULL OR release_claim = ? OR release_claimed_at < ?)
            """,
            [.text(claimant), .real(time.timeIntervalSince1970)] + arguments + [.text(claimant), .real(staleBefore.timeIntervalSince1970)])
        if changed > 0 { return .claimed }
        guard let row = try await query(
            "SELECT release_claim, release_claimed_at FROM sluice_parked_keys WHERE \(Self.whereKey)", arguments
        ).first else { return .notParked }
        return .heldBy(row[0].string ?? "?", since: Date(timeIntervalSince1970: row[1].double ?? 0))
    }

    public func releaseFailed(group: String, topic: String, key: ParkingKey, claimant: String, failure: ParkingFailure?) async throws {
        let arguments = Self.keyArguments(group, topic, key) + [.text(claimant)]
        if let failure {
            try await execute(
                """
                UPDATE sluice_parked_keys SET failure_code = ?, failure_message = ?, failure_handler = ?, failed_at = ?,
                    release_claim = NULL, release_claimed_at = NULL
                WHERE \(Self.whereKey) AND release_claim = ?
                """,
                [.text(failure.code.rawValue), .text(failure.message), SQLValue(failure.handler), .real(failure.failedAt.timeIntervalSince1970)]
                    + arguments)
        } else {
            try await execute(
                "UPDATE sluice_parked_keys SET release_claim = NULL, release_claimed_at = NULL WHERE \(Self.whereKey) AND release_claim = ?",
                arguments)
        }
    }

    public func discardParked(group: String, topic: String, key: ParkingKey, by actor: String, at time: Date) async throws -> Int {
        let arguments = Self.keyArguments(group, topic, key)
        guard let row = try await query(
            "SELECT failure_code FROM sluice_parked_keys WHERE \(Self.whereKey)" + lock("FOR UPDATE"), arguments
        ).first else { return 0 }
        let records = try await execute("DELETE FROM sluice_parked_records WHERE \(Self.whereKey)", arguments)
        try await execute("DELETE FROM sluice_parked_keys WHERE \(Self.whereKey)", arguments)
        try await execute(
            """
            INSERT INTO sluice_parked_discards (consumer_group, topic, parking_key, records, failure_code, discarded_by, discarded_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """,
            arguments + [.integer(Int64(records)), row[0], .text(actor), .real(time.timeIntervalSince1970)])
        return records
    }

    private static func unreadable(_ table: String) -> SluiceError {
        SluiceError(code: .storeStatementFailed, message: "a row of \(table) cannot be read")
    }
}
