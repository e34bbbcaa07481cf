/// Embeddable ArgumentParser commands (`run`, `replay`) that a service mounts in its own executable.
///
/// The commands arrive with the pipeline (#4) and replay (#6) issues; this module exports nothing
/// yet so that no service can mount a command that does not work.
enum SluiceCLIModule {}
