/* fuzz_step_request.c - the common step request parser (steps/request.h)
 * on arbitrary JSON text, as a function receives it in POST /.
 *
 * Each input is parsed once and checked with several sets of required
 * fields (what the different steps ask for), then the step-specific field
 * readers run over it. Nothing here connects anywhere: req_Parse only
 * parses (the steps are configured with two peer databases and a shared
 * one nobody listens at). Properties: what req_Parse promises about a
 * successful parse (ranges, peer index below the job's workers and, with
 * per-peer databases, the configured ones; no address in the request;
 * dim = c*h*w) holds, and a failure always carries a message naming the
 * problem. */
#include <stdio.h>
#include <string.h>

#include <cJSON.h>

#include "fuzz_util.h"
#include "steps/fields.h"
#include "steps/request.h"
#include "steps/steps.h"

#define FZ_CONFIGURED_PEERS 2

static const unsigned needs[] = {
    0,
    REQ_ITERATION | REQ_PEER | REQ_PEERS,
    REQ_SHAPE | REQ_SHARED,
    REQ_SHAPE | REQ_ITERATION | REQ_PEER | REQ_PEERS | REQ_SHARED,
    REQ_SHAPE | REQ_ITERATION | REQ_PEER | REQ_SHARED | REQ_M,
};

static void check_Parsed(const cJSON *body, const step_req *q, unsigned need)
{
    FZ_CHECK(job_Validate(&q->job) == SP_OK, "invalid job accepted: %s", sp_LastError());
    FZ_CHECK(!cJSON_GetObjectItemCaseSensitive(body, FIELD_PEERS) &&
                 !cJSON_GetObjectItemCaseSensitive(body, FIELD_SHARED) &&
                 !cJSON_GetObjectItemCaseSensitive(body, FIELD_NATS),
             "a request naming an address was accepted");
    if (need & REQ_ITERATION)
        FZ_CHECK(q->iteration >= 0, "iteration %ld", q->iteration);
    FZ_CHECK(q->n_peers == q->job.workers, "peers %d of %d workers", q->n_peers,
             q->job.workers);
    if (need & REQ_PEER)
        FZ_CHECK(q->peer >= 0, "peer %d", q->peer);
    if (q->peer >= 0)
        FZ_CHECK(q->peer < q->n_peers, "peer %d of %d", q->peer, q->n_peers);
    if (q->per_peer && q->peer >= 0)
        FZ_CHECK(q->peer < FZ_CONFIGURED_PEERS, "peer %d beyond the configured", q->peer);
    if (q->per_peer && (need & REQ_PEERS))
        FZ_CHECK(q->n_peers <= FZ_CONFIGURED_PEERS, "%d workers, %d databases", q->n_peers,
                 FZ_CONFIGURED_PEERS);
    if (need & REQ_M)
        FZ_CHECK(q->m >= 0 && q->m < q->job.minibatches, "m %d of %d", q->m,
                 q->job.minibatches);
    if (need & REQ_SHAPE) {
        size_t dim = (size_t)q->spec.in_c * (size_t)q->spec.in_h * (size_t)q->spec.in_w;
        FZ_CHECK(q->dim == dim && dim > 0, "dim %zu vs %zu", q->dim, dim);
        FZ_CHECK(q->n_params > 0, "no parameters");
    }
}

/* The readers steps use for their own fields. */
static void fuzz_Fields(const cJSON *body, int n_peers)
{
    int i, b, n, *list;
    long l;
    double d;
    const char *str;
    (void)req_GetInt(body, "m", 0, JOB_MAX_MINIBATCHES - 1, 1, 0, &i);
    (void)req_GetLong(body, "timeout_ms", 1, 3600000, 0, 1000, &l);
    (void)req_GetBool(body, "dataset_reload", 0, &b);
    (void)req_GetNumber(body, "significance", &d, &b);
    (void)req_GetString(body, "source", 16, &str);
    if (str)
        FZ_CHECK(strlen(str) < 16, "string over its cap");
    int hi = n_peers ? n_peers : 8;
    if (req_GetPeerList(body, "live", hi, 0, &list, &n) == SP_OK) {
        FZ_CHECK(n >= 1 && n <= hi && list, "peer list of %d", n);
        for (int k = 0; k < n; k++) {
            FZ_CHECK(list[k] >= 0 && list[k] < hi, "peer %d out of [0,%d)", list[k], hi);
            for (int m = 0; m < k; m++)
                FZ_CHECK(list[m] != list[k], "duplicate peer %d", list[k]);
        }
        free(list);
    } else {
        FZ_CHECK(list == NULL, "list set on failure");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *body = cJSON_ParseWithLength((const char *)data, size);
    if (!body)
        return 0;
    static int configured;
    if (!configured) {
        steps_config c;
        memset(&c, 0, sizeof c);
        snprintf(c.redis_peers, sizeof c.redis_peers, "127.0.0.1:1,127.0.0.1:1");
        snprintf(c.redis_shared, sizeof c.redis_shared, "127.0.0.1:1");
        FZ_CHECK(steps_Configure(&c) == SP_OK, "configuration: %s", sp_LastError());
        configured = 1;
    }
    rt_request r;
    memset(&r, 0, sizeof r);
    r.body = body;
    int n_peers = 0;
    for (size_t i = 0; i < sizeof needs / sizeof needs[0]; i++) {
        step_req q;
        sp_ClearError();
        spStatus s = req_Parse(&r, needs[i], &q);
        if (s == SP_OK) {
            check_Parsed(body, &q, needs[i]);
            n_peers = q.n_peers;
        } else {
            FZ_CHECK(sp_LastError()[0] != '\0', "status %d without a message", (int)s);
        }
    }
    fuzz_Fields(body, n_peers);
    cJSON_Delete(body);
    return 0;
}
