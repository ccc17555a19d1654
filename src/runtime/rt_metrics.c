/* rt_metrics.c - counters behind GET /metrics.
 *
 * One mutex guards everything: an invocation takes it twice for a few
 * nanoseconds, which is nothing next to an HTTP round trip, and it keeps the
 * histogram's sum, count and buckets consistent with each other in a scrape. */
#include "runtime/rt_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bounds in seconds; step functions range from sub-ms Redis averages to
 * multi-second gradient computations, and the default deadline is 120 s. */
static const double bucket_le[RT_METRICS_BUCKETS - 1] = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120};
static const char *const bucket_text[RT_METRICS_BUCKETS] = {
    "0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
    "1", "2.5", "5", "10", "30", "120", "+Inf"};

/* Label values escape backslash, double quote and newline (exposition format). */
static char *label_Escape(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(2 * n + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') {
            *o++ = '\\';
            *o++ = *s;
        } else if (*s == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

spStatus metrics_Init(rt_metrics *m, const char *function_name)
{
    memset(m, 0, sizeof *m);
    m->label = label_Escape(function_name ? function_name : "");
    if (!m->label)
        return sp_Error(SP_ERR_NOMEM, "metrics: out of memory");
    pthread_mutex_init(&m->mu, NULL);
    return SP_OK;
}

void metrics_Destroy(rt_metrics *m)
{
    if (!m->label)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m->label);
    m->label = NULL;
}

void metrics_Begin(rt_metrics *m)
{
    pthread_mutex_lock(&m->mu);
    m->inflight++;
    pthread_mutex_unlock(&m->mu);
}

/* Caller holds the lock. Codes past the table's size are dropped: the
 * runtime only ever answers with a handful of distinct codes. */
static void code_Count(rt_metrics *m, int code)
{
    for (int i = 0; i < m->ncodes; i++) {
        if (m->codes[i] == code) {
            m->code_counts[i]++;
            return;
        }
    }
    if (m->ncodes == RT_METRICS_CODES)
        return;
    /* keep the table sorted so the exposition is stable */
    int i = m->ncodes++;
    while (i > 0 && m->codes[i - 1] > code) {
        m->codes[i] = m->codes[i - 1];
        m->code_counts[i] = m->code_counts[i - 1];
        i--;
    }
    m->codes[i] = code;
    m->code_counts[i] = 1;
}

void metrics_End(rt_metrics *m, int begun, int code, double seconds, size_t bytes_in,
                 size_t bytes_out)
{
    int b = 0;
    while (b < RT_METRICS_BUCKETS - 1 && seconds > bucket_le[b])
        b++;
    pthread_mutex_lock(&m->mu);
    m->inflight -= begun != 0;
    code_Count(m, code);
    m->buckets[b]++;
    m->sum_seconds += seconds;
    m->count++;
    m->bytes_in += bytes_in;
    m->bytes_out += bytes_out;
    pthread_mutex_unlock(&m->mu);
}

void metrics_Abort(rt_metrics *m, int begun, size_t bytes_in)
{
    pthread_mutex_lock(&m->mu);
    m->inflight -= begun != 0;
    m->bytes_in += bytes_in;
    pthread_mutex_unlock(&m->mu);
}

static void render_Locked(rt_metrics *m, FILE *f)
{
    const char *fn = m->label;
    fprintf(f, "# HELP spirt_requests_total Invocations (POST /) by HTTP status code.\n"
               "# TYPE spirt_requests_total counter\n");
    for (int i = 0; i < m->ncodes; i++)
        fprintf(f, "spirt_requests_total{function=\"%s\",code=\"%d\"} %llu\n", fn, m->codes[i],
                (unsigned long long)m->code_counts[i]);
    fprintf(f, "# HELP spirt_request_duration_seconds Invocation latency, first request byte "
               "to queued response.\n"
               "# TYPE spirt_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int b = 0; b < RT_METRICS_BUCKETS; b++) {
        cum += m->buckets[b];
        fprintf(f, "spirt_request_duration_seconds_bucket{function=\"%s\",le=\"%s\"} %llu\n", fn,
                bucket_text[b], (unsigned long long)cum);
    }
    fprintf(f, "spirt_request_duration_seconds_sum{function=\"%s\"} %.6f\n", fn, m->sum_seconds);
    fprintf(f, "spirt_request_duration_seconds_count{function=\"%s\"} %llu\n", fn,
            (unsigned long long)m->count);
    fprintf(f, "# HELP spirt_bytes_in_total Request body bytes received by invocations.\n"
               "# TYPE spirt_bytes_in_total counter\n"
               "spirt_bytes_in_total{function=\"%s\"} %llu\n", fn,
            (unsigned long long)m->bytes_in);
    fprintf(f, "# HELP spirt_bytes_out_total Response body bytes sent by invocations.\n"
               "# TYPE spirt_bytes_out_total counter\n"
               "spirt_bytes_out_total{function=\"%s\"} %llu\n", fn,
            (unsigned long long)m->bytes_out);
    fprintf(f, "# HELP spirt_inflight_requests Invocations being processed now.\n"
               "# TYPE spirt_inflight_requests gauge\n"
               "spirt_inflight_requests{function=\"%s\"} %lld\n", fn, (long long)m->inflight);
}

char *metrics_Render(rt_metrics *m, size_t *len)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    if (!f)
        return NULL;
    pthread_mutex_lock(&m->mu);
    render_Locked(m, f);
    pthread_mutex_unlock(&m->mu);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    *len = n;
    return text;
}
