/// The embedded default dedupe store (GRDB on the system SQLite).
///
/// This module is filled by the dedupe-store issue (#5); it exports nothing yet so that nothing
/// can depend on a store that does not exist.
enum SluiceSQLiteModule {}
