/* init.c - the start of a run: the dataset into the shared Redis (once per
 * job), the seeded initial model into every peer's Redis, fresh optimizer
 * state, and a fresh NATS stream for the job's announcements. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/tensor.h"
#include "steps/applied.h"
#include "steps/step_util.h"
#include "steps/step_ctx.h"
#include "steps/fields.h"

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

/* Rows are stored sparse for a model that reads sparse rows. */
static int rows_Sparse(const job_config *j) { return model_SpecIsSparse(&j->model); }

static int meta_Matches(const data_meta *m, const job_config *j)
{
    return strcmp(m->dataset, j->dataset) == 0 && m->train_samples == j->train_samples &&
           m->test_samples == j->test_samples && m->sparse == rows_Sparse(j);
}

/* Both splits, in the form the job's model reads. */
static spStatus init_Rows(const step_req *q, store *shared, const dataset *train,
                          const dataset *test)
{
    if (!rows_Sparse(&q->job)) {
        spStatus st = rows_Upload(shared, q->job.id, "train", train);
        return st ? st : rows_Upload(shared, q->job.id, "test", test);
    }
    if (!dataset_IsSparse(train))
        return sp_Error(SP_ERR_INVALID, "model %s reads sparse rows: dataset %s is not a LibSVM "
                        "file", model_KindName(q->job.model.kind), q->job.dataset);
    spStatus st = rows_UploadSparse(shared, q->job.id, "train", train);
    return st ? st : rows_UploadSparse(shared, q->job.id, "test", test);
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
        (st = init_Rows(q, shared, &train, &test)))
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
    meta->sparse = rows_Sparse(&q->job);
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

/* Resume: a peer keeps a model of the right size and reports the last
 * iteration it applied; one without (new, or its database lost it) gets
 * the initial model (-1). *kept says which happened. */
static spStatus init_PeerResume(const step_req *q, store *s, int i, long *applied, int *kept)
{
    char kp[160];
    const char *keys[1] = {kp};
    spStatus st = req_Key(q, kp, "params:%d", i);
    if (st)
        return st;
    st = steps_CheckTensors(s, keys, 1, q->n_params, "init");
    if (st == SP_OK)
        st = applied_Read(s, q, i, applied);
    *kept = st == SP_OK;
    if (st == SP_ERR_NOT_FOUND || st == SP_ERR_INVALID || st == SP_ERR_FORMAT) {
        sp_ClearError();
        st = SP_OK;
    }
    return st;
}

/* Every peer starts from the same seeded parameters and zero momentum -
 * unless the run resumes (see init_PeerResume). applied[i] gets the peer's
 * last applied iteration (-1: none); with resume, a peer whose database
 * does not answer is left alone and marked unreachable (-2) so the driver
 * can start without it. */
static spStatus init_Peers(const step_req *q, const float *params, int resume, long *applied,
                           step_io *io)
{
    char kp[160], km[160], kmg[160], kab[160];
    spStatus st;
    double t0 = io_NowMs();
    /* Keys carry the peer index so architectures whose workers share one
     * database (MLLESS, LambdaML) keep one model per worker too. */
    for (int i = 0; i < q->n_peers; i++) {
        store *s;
        int kept = 0;
        applied[i] = -1;
        /* added:<i>, absorbed:<i>: the last iteration whose others' steps
         * / removed worker's residual MLLESS added to i's replica
         * (apply.c), marked like applied. */
        if ((st = req_Key(q, kp, "params:%d", i)) || (st = req_Key(q, km, "mom:%d", i)) ||
            (st = req_Key(q, kmg, "added:%d", i)) || (st = req_Key(q, kab, "absorbed:%d", i)))
            return st;
        st = req_PeerStore(q, i, &s);
        io_snap snap = st ? (io_snap){0} : io_Snap(s);
        if (st == SP_OK && resume)
            st = init_PeerResume(q, s, i, &applied[i], &kept);
        if (resume && st && sp_IsRetryable(st)) {
            sp_ClearError();
            applied[i] = -2;
            continue;
        }
        /* The marker goes first: a driver that dies part-way must not
         * leave a fresh model under an old run's marker (--resume). */
        if (st == SP_OK && !kept &&
            ((st = applied_Write(s, q, i, -1)) ||
             (st = store_PutTensor(s, kp, params, q->n_params, 0)) ||
             (st = store_Delete(s, km)) || (st = store_Delete(s, kmg)) ||
             (st = store_Delete(s, kab))))
            st = sp_Wrap(st, "init of peer %d", i);
        if (st)
            return st;
        io_Account(io, &snap);
    }
    io_Add(&io->store_ms, t0);
    return SP_OK;
}

static spStatus init_Stream(const step_req *q, int resume, step_io *io, int *reset)
{
    *reset = 0;
    if (!steps_HasNats())
        return SP_OK;
    sync_conn *c;
    double t0 = io_NowMs();
    /* Announcements of an earlier run of the same job id would satisfy this
     * run's barriers: every run starts with an empty stream. A resumed run
     * is the same run: its announcements stay, but not its live-set
     * decisions - no peer applied an iteration from the resumed one on, and
     * a decision made then may name peers that are gone (or leave out the
     * only ones left). */
    spStatus st = steps_Nats(&c);
    if (st == SP_OK && !resume && (st = sync_DeleteStream(c, q->job.id)) == SP_OK)
        st = sync_EnsureStream(c, q->job.id);
    else if (st == SP_OK && resume && (st = sync_EnsureStream(c, q->job.id)) == SP_OK)
        st = sync_ForgetDecisions(c, q->job.id, STEPS_LIVE_TOPIC);
    io_Add(&io->sync_ms, t0);
    *reset = st == SP_OK && !resume;
    return st;
}

static void init_Answer(cJSON *res, const data_meta *m, size_t n_params, int uploaded, int reset)
{
    cJSON *shape = cJSON_AddArrayToObject(res, FIELD_SHAPE);
    int s[4] = {m->c, m->h, m->w, m->classes};
    for (int i = 0; i < 4; i++)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(s[i]));
    cJSON_AddNumberToObject(res, FIELD_TRAIN_SAMPLES, (double)m->n_train);
    cJSON_AddNumberToObject(res, "test_samples", (double)m->n_test);
    cJSON_AddNumberToObject(res, "dim", (double)m->dim);
    cJSON_AddNumberToObject(res, "params", (double)n_params);
    cJSON_AddBoolToObject(res, "dataset_uploaded", uploaded);
    cJSON_AddBoolToObject(res, "stream_reset", reset);
}

/* "applied": the last iteration each peer's model holds (-1 none, null
 * when its database did not answer; only with resume). */
static void init_AnswerResume(cJSON *res, int resume, const long *applied, int n)
{
    cJSON_AddBoolToObject(res, "resumed", resume);
    if (!resume)
        return;
    cJSON *a = cJSON_AddArrayToObject(res, FIELD_APPLIED);
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, applied[i] >= -1 ? cJSON_CreateNumber((double)applied[i])
                                                 : cJSON_CreateNull());
}

STEP_DEFINE(init, Init, REQ_PEERS | REQ_SHARED, 1)

static spStatus init_Run(step_ctx *c, cJSON *res)
{
    /* Not const: init learns the shape from the dataset, not the request. */
    step_req *q = &c->q;
    step_io *io = &c->io;
    data_meta meta;
    int reload, resume, uploaded = 0, reset = 0;
    float *params = NULL;
    long *applied = NULL;
    model *m;
    spStatus st;
    if ((st = req_GetBool(q->body, "dataset_reload", 0, &reload)) ||
        (st = req_GetBool(q->body, FIELD_RESUME, 0, &resume)) ||
        (st = init_Dataset(q, reload, &meta, &uploaded, io)))
        goto out;
    q->spec = q->job.model;
    q->spec.in_c = meta.c;
    q->spec.in_h = meta.h;
    q->spec.in_w = meta.w;
    q->spec.classes = meta.classes;
    if ((st = steps_Model(&q->spec, &m))) {
        st = sp_Wrap(st, "dataset %s (%dx%dx%d, %d classes) does not fit model %s",
                     q->job.dataset, meta.c, meta.h, meta.w, meta.classes,
                     model_KindName(q->spec.kind));
        goto out;
    }
    q->n_params = model_ParamCount(m);
    if (!(params = tensor_Alloc(q->n_params)) ||
        !(applied = calloc((size_t)q->n_peers, sizeof *applied))) {
        st = sp_Error(SP_ERR_NOMEM, "out of memory for %zu parameters", q->n_params);
        goto out;
    }
    double t0 = io_NowMs();
    model_Init(m, params, q->job.seed);
    io_Add(&io->compute_ms, t0);
    if ((st = init_Peers(q, params, resume, applied, io)) ||
        (st = init_Stream(q, resume, io, &reset)))
        goto out;
    init_Answer(res, &meta, q->n_params, uploaded, reset);
    init_AnswerResume(res, resume, applied, q->n_peers);
out:
    free(params);
    free(applied);
    return st;
}
