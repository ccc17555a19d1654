/* fuzz_step_request.c - the common step request parser (steps/request.h)
 * on arbitrary JSON text, as a function receives it in POST /.
 *
 * Each input is parsed once and checked with several sets of required
 * fields (what the different steps ask for), then the step-specific field
 * readers run over it. Nothing here connects anywhere: req_Parse only
 * parses. Properties: what req_Parse promises about a successful parse
 * (ranges, peer index inside the peer list, dim = c*h*w) holds, and a
 * failure always carries a message naming the problem. */
#include <string.h>

#include <cJSON.h>

#include "fuzz_util.h"
#include "steps/request.h"

static const unsigned needs[] = {
    0,
    REQ_ITERATION | REQ_PEER | REQ_PEERS,
    REQ_SHAPE | REQ_SHARED,
    REQ_SHAPE | REQ_ITERATION | REQ_PEER | REQ_PEERS | REQ_SHARED,
    REQ_SHAPE | REQ_ITERATION | REQ_PEER | REQ_SHARED | REQ_M,
};

static void check_Parsed(const step_req *q, unsigned need)
{
    FZ_CHECK(job_Validate(&q->job) == SP_OK, "invalid job accepted: %s", sp_LastError());
    if (need & REQ_ITERATION)
        FZ_CHECK(q->iteration >= 0, "iteration %ld", q->iteration);
    if (need & REQ_PEERS)
        FZ_CHECK(q->n_peers >= 1 && q->n_peers <= REQ_MAX_PEERS && q->peers, "peers %d",
                 q->n_peers);
    if (need & REQ_PEER)
        FZ_CHECK(q->peer >= 0, "peer %d", q->peer);
    if (q->n_peers && q->peer >= 0)
        FZ_CHECK(q->peer < q->n_peers, "peer %d of %d", q->peer, q->n_peers);
    if (need & REQ_SHARED)
        FZ_CHECK(q->has_shared, "shared missing");
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
    rt_request r;
    memset(&r, 0, sizeof r);
    r.body = body;
    int n_peers = 0;
    for (size_t i = 0; i < sizeof needs / sizeof needs[0]; i++) {
        step_req q;
        sp_ClearError();
        spStatus s = req_Parse(&r, needs[i], &q);
        if (s == SP_OK) {
            check_Parsed(&q, needs[i]);
            n_peers = q.n_peers;
            req_Free(&q);
        } else {
            FZ_CHECK(sp_LastError()[0] != '\0', "status %d without a message", (int)s);
            FZ_CHECK(q.peers == NULL, "peers left allocated after a failure");
        }
    }
    fuzz_Fields(body, n_peers);
    cJSON_Delete(body);
    return 0;
}
