/* init.c - the start of a run: the dataset into the shared Redis (once per
 * job), the seeded initial model into every peer's Redis, fresh optimizer
 * state, and a fresh NATS stream for the job's announcements. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/tensor.h"
#include "steps/step_util.h"
#include "steps/steps.h"

/* A bare dataset name is looked up under steps_Config()->data_dir first,
 * so an in-process driver can point steps at a directory without touching
 * the environment (which other threads may be reading). */
static spStatus init_OpenDataset(const char *name, dataset *train, dataset *test)
{
    const char *dir = steps_Config()->data_dir;
    if (dir[0] && !strchr(name, '/')) {
        char path[1100];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            return dataset_Open(path, train, test);
    }
    return dataset_Open(name, train, test);
}

static int meta_Matches(const data_meta *m, const job_config *j)
{
    return strcmp(m->dataset, j->dataset) == 0 && m->train_samples == j->train_samples &&
           m->test_samples == j->test_samples;
}

/* Loads the dataset and uploads it, replacing any earlier upload: the old
 * meta goes first so a reader never pairs it with half-written rows. */
static spStatus init_Upload(const step_req *q, store *shared, data_meta *meta, step_io *io)
{
    dataset train = {0}, test = {0};
    double t0 = io_NowMs();
    spStatus st = init_OpenDataset(q->job.dataset, &train, &test);
    if (st)
        return sp_Wrap(st, "init");
    io_Add(&io->compute_ms, t0);
    if (q->job.train_samples > 0 && (size_t)q->job.train_samples < train.n)
        train.n = (size_t)q->job.train_samples;
    if (q->job.test_samples > 0 && (size_t)q->job.test_samples < test.n)
        test.n = (size_t)q->job.test_samples;
    char key[160];
    t0 = io_NowMs();
    if ((st = req_Key(q, key, "data:meta")) || (st = store_Delete(shared, key)) ||
        (st = rows_Upload(shared, q->job.id, "train", &train, &io->bytes_out)) ||
        (st = rows_Upload(shared, q->job.id, "test", &test, &io->bytes_out)))
        goto out;
    memset(meta, 0, sizeof *meta);
    meta->n_train = train.n;
    meta->n_test = test.n;
    meta->dim = train.dim;
    meta->c = train.c;
    meta->h = train.h;
    meta->w = train.w;
    meta->classes = train.classes > test.classes ? train.classes : test.classes;
    snprintf(meta->dataset, sizeof meta->dataset, "%s", q->job.dataset);
    meta->train_samples = q->job.train_samples;
    meta->test_samples = q->job.test_samples;
    st = meta_Write(shared, q->job.id, meta);
    io_Add(&io->store_ms, t0);
out:
    dataset_Free(&train);
    dataset_Free(&test);
    return st;
}

static spStatus init_Dataset(const step_req *q, int reload, data_meta *meta, int *uploaded,
                             step_io *io)
{
    store *shared;
    int have = 0;
    spStatus st = req_Shared(q, &shared);
    if (st)
        return st;
    io_snap snap = io_Snap(shared);
    st = meta_Read(shared, q->job.id, meta, &have);
    if (st == SP_ERR_FORMAT) { /* a damaged marker: upload again */
        sp_ClearError();
        st = SP_OK;
        have = 0;
    }
    *uploaded = 0;
    if (st == SP_OK && (!have || reload || !meta_Matches(meta, &q->job))) {
        st = init_Upload(q, shared, meta, io);
        *uploaded = 1;
    }
    io_Account(io, &snap);
    if (st == SP_OK && meta->n_train == 0)
        st = sp_Error(SP_ERR_INVALID, "dataset %s has no training rows", q->job.dataset);
    return st;
}

/* Every peer starts from the same seeded parameters and zero momentum. */
static spStatus init_Peers(const step_req *q, const float *params, step_io *io)
{
    char kp[160], km[160], ka[160];
    spStatus st;
    double t0 = io_NowMs();
    /* Keys carry the peer index so architectures whose workers share one
     * database (MLLESS, LambdaML) keep one model per worker too. */
    for (int i = 0; i < q->n_peers; i++) {
        store *s;
        if ((st = req_Key(q, kp, "params:%d", i)) || (st = req_Key(q, km, "mom:%d", i)) ||
            (st = req_Key(q, ka, "applied:%d", i)) || (st = req_PeerStore(q, i, &s)))
            return st;
        io_snap snap = io_Snap(s);
        if ((st = store_PutTensor(s, kp, params, q->n_params, 0)) ||
            (st = store_Delete(s, km)) || (st = store_Delete(s, ka)))
            return sp_Wrap(st, "init of peer %d", i);
        io_Account(io, &snap);
    }
    io_Add(&io->store_ms, t0);
    return SP_OK;
}

static spStatus init_Stream(const step_req *q, step_io *io, int *reset)
{
    *reset = 0;
    if (!steps_HasNats(q))
        return SP_OK;
    sync_conn *c;
    double t0 = io_NowMs();
    /* Announcements of an earlier run of the same job id would satisfy this
     * run's barriers: every run starts with an empty stream. */
    spStatus st = steps_Nats(q, &c);
    if (st == SP_OK && (st = sync_DeleteStream(c, q->job.id)) == SP_OK)
        st = sync_EnsureStream(c, q->job.id);
    io_Add(&io->sync_ms, t0);
    *reset = st == SP_OK;
    return st;
}

static void init_Answer(cJSON *res, const data_meta *m, size_t n_params, int uploaded, int reset)
{
    cJSON *shape = cJSON_AddArrayToObject(res, "shape");
    int s[4] = {m->c, m->h, m->w, m->classes};
    for (int i = 0; i < 4; i++)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(s[i]));
    cJSON_AddNumberToObject(res, "train_samples", (double)m->n_train);
    cJSON_AddNumberToObject(res, "test_samples", (double)m->n_test);
    cJSON_AddNumberToObject(res, "dim", (double)m->dim);
    cJSON_AddNumberToObject(res, "params", (double)n_params);
    cJSON_AddBoolToObject(res, "dataset_uploaded", uploaded);
    cJSON_AddBoolToObject(res, "stream_reset", reset);
}

spStatus step_Init(const rt_request *req, cJSON *res, void *ctx)
{
    (void)ctx;
    step_req q;
    step_io io;
    data_meta meta;
    int reload, uploaded = 0, reset = 0;
    float *params = NULL;
    model *m;
    io_Init(&io);
    spStatus st = req_Parse(req, REQ_PEERS | REQ_SHARED, &q);
    if (st)
        return st;
    if ((st = req_GetBool(q.body, "dataset_reload", 0, &reload)) ||
        (st = init_Dataset(&q, reload, &meta, &uploaded, &io)))
        goto out;
    q.spec = q.job.model;
    q.spec.in_c = meta.c;
    q.spec.in_h = meta.h;
    q.spec.in_w = meta.w;
    q.spec.classes = meta.classes;
    if ((st = steps_Model(&q.spec, &m))) {
        st = sp_Wrap(st, "dataset %s (%dx%dx%d, %d classes) does not fit model %s",
                     q.job.dataset, meta.c, meta.h, meta.w, meta.classes,
                     model_KindName(q.spec.kind));
        goto out;
    }
    q.n_params = model_ParamCount(m);
    if (!(params = tensor_Alloc(q.n_params))) {
        st = sp_Error(SP_ERR_NOMEM, "out of memory for %zu parameters", q.n_params);
        goto out;
    }
    double t0 = io_NowMs();
    model_Init(m, params, q.job.seed);
    io_Add(&io.compute_ms, t0);
    if ((st = init_Peers(&q, params, &io)) || (st = init_Stream(&q, &io, &reset)))
        goto out;
    init_Answer(res, &meta, q.n_params, uploaded, reset);
    io_Answer(res, &io);
out:
    free(params);
    req_Free(&q);
    return st;
}
