import Sluice

/// The tables of ``PostgresDedupeStore``, as migrations applied before the service's own.
enum PostgresStoreSchema {
    /// The key of the transaction-scoped advisory lock every opening store takes before looking at
    /// the migrations table, so that processes starting at once apply each migration exactly once.
    /// (`'sluice'` as ASCII bytes.)
    static let migrationLockKey: Int64 = 0x736C_7569_6365

    /// Created (under the lock) before anything else; records applied migrations.
    static let migrationsTable = """
        CREATE TABLE IF NOT EXISTS sluice_migrations (
            id TEXT PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """

    /// The store's own migrations. Never change one that shipped; append a new one.
    static let migrations: [StoreMigration] = [
        StoreMigration(
            id: "sluice-1-processed-events-and-offsets",
            sqlite: "",
            postgresql: """
                CREATE TABLE sluice_processed_events (
                    consumer_group TEXT NOT NULL,
                    handler TEXT NOT NULL,
                    event_id TEXT NOT NULL,
                    payload_hash TEXT NOT NULL,
                    processed_at TIMESTAMPTZ NOT NULL,
                    process_count BIGINT NOT NULL DEFAULT 1,
                    PRIMARY KEY (consumer_group, handler, event_id)
                );
                CREATE INDEX sluice_processed_events_processed_at ON sluice_processed_events (processed_at);
                CREATE TABLE sluice_offsets (
                    consumer_group TEXT NOT NULL,
                    topic TEXT NOT NULL,
                    partition INTEGER NOT NULL,
                    next_offset BIGINT NOT NULL,
                    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                    PRIMARY KEY (consumer_group, topic, partition)
                );
                """),
        SQLParkingSchema.migration,
    ]
}
