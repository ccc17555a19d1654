/* step_util.c - timings/bytes of an answer and the per-thread model cache. */
#include "steps/step_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/wire.h"
#include "runtime/runtime.h"
#include "steps/steps.h"
#include "steps/fields.h"

void steps_CopyStr(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
}

void io_Init(step_io *io)
{
    io->compute_ms = io->store_ms = io->sync_ms = io->transfer_ms = -1;
    io->bytes_in = io->bytes_out = 0;
}

double io_NowMs(void)
{
    return clock_Now() * 1000.0;
}

void io_Add(double *slot, double t0)
{
    if (*slot < 0)
        *slot = 0;
    *slot += io_NowMs() - t0;
}

io_snap io_Snap(const store *s)
{
    io_snap n = {s, s ? store_BytesIn(s) : 0, s ? store_BytesOut(s) : 0};
    return n;
}

void io_Account(step_io *io, const io_snap *snap)
{
    if (!snap->s)
        return;
    uint64_t in = store_BytesIn(snap->s), out = store_BytesOut(snap->s);
    /* A reconnect in between resets the counters: count from zero then. */
    io->bytes_in += in >= snap->in ? in - snap->in : in;
    io->bytes_out += out >= snap->out ? out - snap->out : out;
}

static void add_Ms(cJSON *o, const char *name, double ms)
{
    if (ms >= 0)
        cJSON_AddNumberToObject(o, name, (double)(long long)(ms * 1000.0 + 0.5) / 1000.0);
}

void io_Answer(cJSON *res, const step_io *io)
{
    cJSON *t = cJSON_AddObjectToObject(res, FIELD_TIMINGS);
    add_Ms(t, FIELD_COMPUTE_MS, io->compute_ms);
    add_Ms(t, FIELD_STORE_MS, io->store_ms);
    add_Ms(t, FIELD_SYNC_MS, io->sync_ms);
    add_Ms(t, FIELD_TRANSFER_MS, io->transfer_ms);
    cJSON *b = cJSON_AddObjectToObject(res, FIELD_BYTES);
    cJSON_AddNumberToObject(b, FIELD_BYTES_IN, (double)io->bytes_in);
    cJSON_AddNumberToObject(b, FIELD_BYTES_OUT, (double)io->bytes_out);
}

/* ---- per-thread model cache ---------------------------------------------
 * A function server thread handles one request at a time, so one model per
 * thread is enough; it is rebuilt only when a request names another spec.
 * The key's destructor frees it when the thread exits. */
typedef struct {
    model *m;
    model_spec spec;
} model_slot;

static pthread_key_t g_model_key;
static pthread_once_t g_model_once = PTHREAD_ONCE_INIT;

static void slot_Free(void *p)
{
    model_slot *s = p;
    model_Destroy(s->m);
    free(s);
}

static void key_Create(void)
{
    pthread_key_create(&g_model_key, slot_Free);
}

static int spec_Same(const model_spec *a, const model_spec *b)
{
    if (a->kind != b->kind || a->in_c != b->in_c || a->in_h != b->in_h || a->in_w != b->in_w ||
        a->classes != b->classes || a->n_hidden != b->n_hidden)
        return 0;
    for (int i = 0; i < a->n_hidden && i < MODEL_MAX_HIDDEN; i++)
        if (a->hidden[i] != b->hidden[i])
            return 0;
    return 1;
}

spStatus steps_Model(const model_spec *spec, model **out)
{
    pthread_once(&g_model_once, key_Create);
    model_slot *s = pthread_getspecific(g_model_key);
    if (s && s->m && spec_Same(&s->spec, spec)) {
        *out = s->m;
        return SP_OK;
    }
    model *m;
    spStatus st = model_Create(spec, &m);
    if (st)
        return st;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) {
            model_Destroy(m);
            return sp_Error(SP_ERR_NOMEM, "out of memory for the model cache");
        }
        pthread_setspecific(g_model_key, s);
    }
    model_Destroy(s->m);
    s->m = m;
    s->spec = *spec;
    *out = m;
    return SP_OK;
}

/* ---- waits ---------------------------------------------------------------- */

/* Time kept back to answer before the runtime's per-request deadline. */
#define WAIT_MARGIN_MS 100

spStatus steps_WaitMs(const rt_request *req, const step_req *q, int *ms)
{
    spStatus st = req_GetInt(q->body, FIELD_TIMEOUT_MS, 1, JOB_MAX_WAIT_MS, 0,
                             q->job.sync_timeout_ms, ms);
    if (st || req->deadline_ms <= 0)
        return st;
    int64_t left = req->deadline_ms - rt_NowMs() - WAIT_MARGIN_MS;
    if (left <= 0)
        return sp_Error(SP_ERR_TIMEOUT, "no time left before the request deadline");
    if (left < *ms)
        *ms = (int)left;
    return SP_OK;
}

void steps_AddTimeout(cJSON *res, const char *wait, double ms, const int *members, int n)
{
    cJSON *list = cJSON_GetObjectItemCaseSensitive(res, FIELD_TIMEOUTS);
    if (!list)
        list = cJSON_AddArrayToObject(res, FIELD_TIMEOUTS);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, FIELD_WAIT, wait);
    cJSON_AddNumberToObject(e, FIELD_DURATION_MS, (double)(long long)(ms + 0.5));
    cJSON *m = cJSON_AddArrayToObject(e, FIELD_MEMBERS);
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(m, cJSON_CreateNumber(members[i]));
    cJSON_AddItemToArray(list, e);
}

/* ---- stored tensors ------------------------------------------------------- */

spStatus steps_CheckTensors(store *s, const char *const *keys, int k, size_t n,
                            const char *writer)
{
    size_t *lens = malloc(sizeof *lens * (size_t)(k > 0 ? k : 1));
    if (!lens)
        return sp_Error(SP_ERR_NOMEM, "out of memory");
    spStatus st = store_GetBlobLens(s, keys, k, lens);
    size_t want = wire_EncodedSize(WIRE_F32, n);
    for (int i = 0; st == SP_OK && i < k; i++) {
        if (lens[i] == 0)
            st = sp_Error(SP_ERR_NOT_FOUND, "%s is missing (has %s run?)", keys[i], writer);
        else if (lens[i] != want)
            st = sp_Error(SP_ERR_INVALID,
                          "%s holds %zu bytes, but a tensor of the model's %zu parameters "
                          "takes %zu",
                          keys[i], lens[i], n, want);
    }
    free(lens);
    return st;
}

spStatus steps_CheckInDbOptimizer(const step_req *q)
{
    if (q->job.optim.kind == OPTIM_ADAM)
        return sp_Error(SP_ERR_INVALID, "job.optimizer adam: the in-database update supports "
                                        "sgd and momentum only");
    return SP_OK;
}
