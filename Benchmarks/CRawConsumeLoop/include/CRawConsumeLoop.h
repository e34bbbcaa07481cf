#ifndef SLUICE_C_RAW_CONSUME_LOOP_H
#define SLUICE_C_RAW_CONSUME_LOOP_H

#include <stdint.h>

/// The baseline for the consumer benchmark: the loop a team would hand-write on librdkafka.
///
/// Assigns every partition of `topic` from the beginning (no group), polls with
/// rd_kafka_consumer_poll() until `expected` records arrived, touching each key and value, and
/// returns the wall-clock seconds the loop took (from the first poll), or a negative number on
/// error. `checksum` receives the sum of all value bytes' lengths.
double sluice_raw_consume(const char *bootstrap_servers, const char *topic, int32_t partitions,
                          int64_t expected, int64_t *checksum);

#endif
