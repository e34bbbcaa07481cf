#ifndef SLUICE_CRDKAFKA_SHIM_H
#define SLUICE_CRDKAFKA_SHIM_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/// Non-variadic front for rd_kafka_producev(), which Swift cannot call.
///
/// On success ownership of `headers` passes to librdkafka; on failure the caller still owns it.
/// The key and value are copied (RD_KAFKA_MSG_F_COPY), so the caller's buffers may be freed at once.
static inline rd_kafka_resp_err_t
sluice_rd_kafka_produce(rd_kafka_t *rk,
                        const char *topic,
                        int32_t partition,
                        const void *key, size_t key_len,
                        const void *value, size_t value_len,
                        rd_kafka_headers_t *headers,
                        int64_t timestamp_ms,
                        void *opaque) {
    return rd_kafka_producev(rk,
                             RD_KAFKA_V_TOPIC(topic),
                             RD_KAFKA_V_PARTITION(partition),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_KEY((void *)key, key_len),
                             RD_KAFKA_V_VALUE((void *)value, value_len),
                             RD_KAFKA_V_HEADERS(headers),
                             RD_KAFKA_V_TIMESTAMP(timestamp_ms),
                             RD_KAFKA_V_OPAQUE(opaque),
                             RD_KAFKA_V_END);
}

/// The message's private pointer (the producer's per-message opaque) in a delivery report.
static inline void *sluice_rd_kafka_message_opaque(const rd_kafka_message_t *message) {
    return message->_private;
}

#endif
