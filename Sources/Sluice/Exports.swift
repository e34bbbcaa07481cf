// The event contract (envelope, schemas, JSON, records, the snapshot format) is its own module so
// the compiler keeps it free of anything but Foundation; a service that imports Sluice sees it too.
@_exported import SluiceContracts
