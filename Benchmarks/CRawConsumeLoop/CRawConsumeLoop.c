#include "CRawConsumeLoop.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double sluice_raw_consume(const char *bootstrap_servers, const char *topic, int32_t partitions,
                          int64_t expected, int64_t *checksum) {
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap_servers, errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", "sluice-bench-raw-loop", errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "false", errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "raw loop: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "raw loop: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(partitions);
    for (int32_t p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(list, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);

    int64_t count = 0, bytes = 0;
    // Timed from the first record, as the Swift measurements are: the assignment's first fetch
    // is start-up, not throughput.
    double start = 0;
    while (count < expected) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m)
            continue;
        if (!m->err) {
            if (count == 0)
                start = now_seconds();
            count++;
            bytes += (int64_t)m->len + (int64_t)m->key_len;
        }
        rd_kafka_message_destroy(m);
    }
    double elapsed = now_seconds() - start;
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    *checksum = bytes;
    return elapsed;
}
