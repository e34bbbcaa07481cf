/// Test support for services built on Sluice: embedded brokers with topics, fixtures, and (with
/// the replay issue) the staging replay test harness.
enum SluiceTestingModule {}
