/* rt_metrics.h - the runtime's Prometheus counters (internal to src/runtime).
 *
 * Only invocations (requests to "/" that are not readiness probes) are
 * counted: scrapes and probes would otherwise drown the numbers a user reads.
 * Counters are recorded when the response is queued, before a byte of it is
 * sent, so a client that has its answer always sees it in /metrics. */
#ifndef SPIRT_RT_METRICS_H
#define SPIRT_RT_METRICS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define RT_METRICS_CODES 16   /* distinct HTTP codes tracked (we emit ~10) */
#define RT_METRICS_BUCKETS 15 /* latency buckets including +Inf */

typedef struct {
    pthread_mutex_t mu;
    char *label;              /* function name, escaped for a label value */
    int codes[RT_METRICS_CODES];
    uint64_t code_counts[RT_METRICS_CODES];
    int ncodes;
    uint64_t buckets[RT_METRICS_BUCKETS]; /* per bucket, not cumulative */
    double sum_seconds;
    uint64_t count;
    uint64_t bytes_in, bytes_out;
    int64_t inflight;
} rt_metrics;

spStatus metrics_Init(rt_metrics *m, const char *function_name);
void metrics_Destroy(rt_metrics *m);

/* An invocation's body is complete and it is being processed (gauge up). */
void metrics_Begin(rt_metrics *m);
/* It was answered with `code` after `seconds`, moving the given bytes;
 * `begun` says whether metrics_Begin counted it (answers refused from the
 * headers alone never were). */
void metrics_End(rt_metrics *m, int begun, int code, double seconds, size_t bytes_in,
                 size_t bytes_out);
/* It ended without an answer (the client went away). */
void metrics_Abort(rt_metrics *m, int begun, size_t bytes_in);

/* Prometheus text exposition (format 0.0.4), malloc'd; NULL when out of memory. */
char *metrics_Render(rt_metrics *m, size_t *len);

#endif
