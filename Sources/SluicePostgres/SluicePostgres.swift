/// The dedupe store for fleets of consumers (postgres-nio).
///
/// This module is filled by the dedupe-store issue (#5); it exports nothing yet so that nothing
/// can depend on a store that does not exist.
enum SluicePostgresModule {}
