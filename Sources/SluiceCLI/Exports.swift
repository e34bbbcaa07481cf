// A service that mounts the commands names its store through `--database`; the store behind it
// (SQLite or PostgreSQL) is SluiceDatabase's, which services importing SluiceCLI see too.
@_exported import SluiceDatabase
