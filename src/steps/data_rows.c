/* data_rows.c - the dataset in the shared Redis: one key per row
 * ({job}:data:<split>:<i>, wire F32 of dim features then the label) and a
 * meta record ({job}:data:meta, JSON) written last, so its presence means
 * the upload is complete; and a minibatch as its row indices (the
 * minibatch step's mb:p:t:m in the peer's Redis, read by gradient). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/wire.h"
#include "steps/step_util.h"

/* Keys per MGET / SETs per pipeline flush: large enough to amortise round
 * trips, small enough to bound the client's buffers (~3 MB for 28x28). */
#define ROWS_CHUNK 1000
#define ROWS_MAX_BYTES ((size_t)4 << 30)

/* ---- meta ---------------------------------------------------------------- */

static spStatus meta_Field(const cJSON *o, const char *name, double lo, double hi, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi)
        return sp_Error(SP_ERR_FORMAT, "dataset meta: field \"%s\" missing or out of range",
                        name);
    *out = v->valuedouble;
    return SP_OK;
}

static spStatus meta_Parse(const cJSON *o, data_meta *m)
{
    double v[9];
    static const char *names[9] = {"n_train", "n_test", "dim", "c", "h", "w",
                                   "classes", "train_samples", "test_samples"};
    for (int i = 0; i < 9; i++) {
        spStatus st = meta_Field(o, names[i], 0, 1e12, &v[i]);
        if (st)
            return st;
    }
    m->n_train = (size_t)v[0];
    m->n_test = (size_t)v[1];
    m->dim = (size_t)v[2];
    m->c = (int)v[3];
    m->h = (int)v[4];
    m->w = (int)v[5];
    m->classes = (int)v[6];
    m->train_samples = (long)v[7];
    m->test_samples = (long)v[8];
    if (m->dim == 0 || m->dim != (size_t)m->c * (size_t)m->h * (size_t)m->w || m->classes < 1)
        return sp_Error(SP_ERR_FORMAT, "dataset meta: inconsistent shape");
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(o, "dataset");
    const cJSON *nonce = cJSON_GetObjectItemCaseSensitive(o, "nonce");
    if (!cJSON_IsString(ds) || strlen(ds->valuestring) >= sizeof m->dataset ||
        !cJSON_IsString(nonce) || strlen(nonce->valuestring) >= sizeof m->nonce)
        return sp_Error(SP_ERR_FORMAT, "dataset meta: \"dataset\" or \"nonce\" missing");
    strcpy(m->dataset, ds->valuestring);
    strcpy(m->nonce, nonce->valuestring);
    m->sparse = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "sparse"));
    return SP_OK;
}

spStatus meta_Read(store *shared, const char *job, data_meta *m, int *exists)
{
    char key[ROWS_KEY_CAP];
    uint8_t *buf = NULL;
    size_t len = 0;
    memset(m, 0, sizeof *m);
    *exists = 0;
    spStatus st = store_Key(key, sizeof key, job, "data:meta");
    if (st)
        return st;
    st = store_GetBlob(shared, key, &buf, &len);
    if (st == SP_ERR_NOT_FOUND) {
        sp_ClearError();
        return SP_OK;
    }
    if (st)
        return sp_Wrap(st, "reading %s", key);
    cJSON *o = cJSON_ParseWithLength((const char *)buf, len);
    free(buf);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return sp_Error(SP_ERR_FORMAT, "%s is not a JSON object (re-run init with "
                                       "\"dataset_reload\": true)", key);
    }
    st = meta_Parse(o, m);
    cJSON_Delete(o);
    if (st)
        return sp_Wrap(st, "%s", key);
    *exists = 1;
    return SP_OK;
}

static void meta_NewNonce(char *buf, size_t cap)
{
    static atomic_uint counter;
    unsigned n = atomic_fetch_add(&counter, 1);
    snprintf(buf, cap, "%llx-%x-%x", (unsigned long long)(clock_Now() * 1e9), (unsigned)getpid(),
             n);
}

spStatus meta_Write(store *shared, const char *job, const data_meta *m)
{
    char key[ROWS_KEY_CAP], nonce[sizeof m->nonce];
    spStatus st = store_Key(key, sizeof key, job, "data:meta");
    if (st)
        return st;
    meta_NewNonce(nonce, sizeof nonce);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n_train", (double)m->n_train);
    cJSON_AddNumberToObject(o, "n_test", (double)m->n_test);
    cJSON_AddNumberToObject(o, "dim", (double)m->dim);
    cJSON_AddNumberToObject(o, "c", m->c);
    cJSON_AddNumberToObject(o, "h", m->h);
    cJSON_AddNumberToObject(o, "w", m->w);
    cJSON_AddNumberToObject(o, "classes", m->classes);
    cJSON_AddStringToObject(o, "dataset", m->dataset);
    cJSON_AddNumberToObject(o, "train_samples", (double)m->train_samples);
    cJSON_AddNumberToObject(o, "test_samples", (double)m->test_samples);
    cJSON_AddStringToObject(o, "nonce", nonce);
    cJSON_AddBoolToObject(o, "sparse", m->sparse);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text)
        return sp_Error(SP_ERR_NOMEM, "out of memory for the dataset meta");
    st = store_PutBlob(shared, key, text, strlen(text), 0);
    free(text);
    return st ? sp_Wrap(st, "writing %s", key) : SP_OK;
}

spStatus meta_CheckShape(const data_meta *m, const step_req *q)
{
    if (model_SpecIsSparse(&q->spec) != m->sparse)
        return sp_Error(SP_ERR_INVALID, "model %s reads %s rows, but init stored them %s (run "
                        "init for this job)", model_KindName(q->spec.kind),
                        model_SpecIsSparse(&q->spec) ? "sparse" : "dense",
                        m->sparse ? "sparse" : "dense");
    if (q->dim != m->dim || q->spec.classes < m->classes)
        return sp_Error(SP_ERR_INVALID,
                        "\"shape\" [%d,%d,%d,%d] does not match the dataset loaded by init "
                        "([%d,%d,%d,%d])",
                        q->spec.in_c, q->spec.in_h, q->spec.in_w, q->spec.classes, m->c, m->h,
                        m->w, m->classes);
    return SP_OK;
}

/* ---- rows ---------------------------------------------------------------- */

spStatus rows_Keys(const char *job, const char *split, const size_t *idx, int k,
                          char (*names)[ROWS_KEY_CAP], const char **keys)
{
    for (int i = 0; i < k; i++) {
        spStatus st = store_Key(names[i], ROWS_KEY_CAP, job, "data:%s:%zu", split, idx[i]);
        if (st)
            return st;
        keys[i] = names[i];
    }
    return SP_OK;
}

spStatus rows_Fetch(store *shared, const char *job, const char *split, const size_t *idx,
                    size_t b, size_t dim, float *rows)
{
    char(*names)[ROWS_KEY_CAP] = malloc(sizeof *names * ROWS_CHUNK);
    const char **keys = malloc(sizeof *keys * ROWS_CHUNK);
    spStatus st = SP_OK;
    if (!names || !keys)
        st = sp_Error(SP_ERR_NOMEM, "out of memory");
    for (size_t off = 0; st == SP_OK && off < b; off += ROWS_CHUNK) {
        int k = (int)(b - off < ROWS_CHUNK ? b - off : ROWS_CHUNK);
        if ((st = rows_Keys(job, split, idx + off, k, names, keys)))
            break;
        st = store_GetRowsInto(shared, keys, k, dim + 1, rows + off * (dim + 1));
        if (st == SP_ERR_NOT_FOUND)
            st = sp_Wrap(st, "a dataset row is missing (was init run for this job and shared "
                             "redis?)");
        else if (st)
            st = sp_Wrap(st, "dataset rows");
    }
    free(names);
    free(keys);
    return st;
}

/* ---- minibatch row indices ----------------------------------------------- */

spStatus rows_PutIndices(store *s, const char *key, const size_t *idx, size_t b, int ttl_s)
{
    int32_t *v = malloc(sizeof *v * (b ? b : 1));
    uint8_t *blob = NULL;
    size_t len = 0;
    spStatus st = SP_OK;
    if (!v)
        return sp_Error(SP_ERR_NOMEM, "out of memory for %zu row indices", b);
    for (size_t i = 0; st == SP_OK && i < b; i++) {
        if (idx[i] > (size_t)INT32_MAX)
            st = sp_Error(SP_ERR_INVALID, "row index %zu does not fit the int32 index blob",
                          idx[i]);
        v[i] = (int32_t)idx[i];
    }
    if (st == SP_OK)
        st = wire_Encode(WIRE_I32, v, b, 0, &blob, &len);
    if (st == SP_OK)
        st = store_PutBlob(s, key, blob, len, ttl_s);
    free(v);
    free(blob);
    return st ? sp_Wrap(st, "storing %s", key) : SP_OK;
}

spStatus rows_GetIndices(store *s, const char *key, size_t max_b, size_t **idx, size_t *b)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    wire_view v;
    *idx = NULL;
    *b = 0;
    spStatus st = store_GetBlob(s, key, &buf, &len);
    if (st == SP_ERR_NOT_FOUND)
        return sp_Wrap(st, "%s: no row indices (the minibatch step writes them: has it run "
                           "for this iteration and m?)", key);
    if (st)
        return sp_Wrap(st, "%s", key);
    if ((st = wire_Parse(buf, len, &v))) {
        st = sp_Wrap(st, "%s is not a minibatch index blob", key);
    } else if (v.dtype != WIRE_I32) {
        st = sp_Error(SP_ERR_INVALID,
                      "%s holds wire dtype %d, not the int32 row indices the minibatch step "
                      "writes", key, (int)v.dtype);
    } else if (v.count == 0 || v.count > max_b) {
        st = sp_Error(SP_ERR_INVALID, "%s holds %llu row indices, not 1 to the batch of %zu",
                      key, (unsigned long long)v.count, max_b);
    } else if (!(*idx = malloc(sizeof **idx * (size_t)v.count))) {
        st = sp_Error(SP_ERR_NOMEM, "out of memory for %llu row indices",
                      (unsigned long long)v.count);
    }
    for (size_t i = 0; st == SP_OK && i < (size_t)v.count; i++) {
        const uint8_t *p = v.payload + 4 * i; /* little-endian int32 */
        uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24;
        if (u > (uint32_t)INT32_MAX)
            st = sp_Error(SP_ERR_INVALID, "%s: row index %zu is negative", key, i);
        (*idx)[i] = u;
    }
    free(buf);
    if (st) {
        free(*idx);
        *idx = NULL;
        return st;
    }
    *b = (size_t)v.count;
    return SP_OK;
}

spStatus rows_Split(const float *rows, size_t b, size_t dim, int classes, float *x, int32_t *y)
{
    for (size_t i = 0; i < b; i++) {
        const float *r = rows + i * (dim + 1);
        float label = r[dim];
        if (!(label >= 0 && label < (float)classes) || label != (float)(int32_t)label)
            return sp_Error(SP_ERR_INVALID, "row %zu: label %g is not a class in [0, %d)", i,
                            (double)label, classes);
        memcpy(x + i * dim, r, sizeof(float) * dim);
        y[i] = (int32_t)label;
    }
    return SP_OK;
}

spStatus rows_Upload(store *s, const char *job, const char *split, const dataset *d)
{
    /* Rows are stored expanded to dim floats, so a sparse dataset is held
     * to the dense loaders' limit. */
    if (dataset_IsSparse(d) && d->dim && d->n > ROWS_MAX_BYTES / sizeof(float) / d->dim)
        return sp_Error(SP_ERR_TOO_LARGE, "%zu rows of %zu features exceed the %zu GiB the "
                        "shared Redis holds expanded rows up to", d->n, d->dim,
                        ROWS_MAX_BYTES >> 30);
    /* A chunk at a time: ROWS_CHUNK encoded rows, their keys, one pipeline. */
    size_t cap = wire_EncodedSize(WIRE_F32, d->dim + 1);
    uint8_t *blobs = malloc(cap * ROWS_CHUNK);
    float *row = malloc(sizeof(float) * (d->dim + 1));
    char(*names)[ROWS_KEY_CAP] = malloc(sizeof *names * ROWS_CHUNK);
    const char **keys = malloc(sizeof *keys * ROWS_CHUNK);
    const void **data = malloc(sizeof *data * ROWS_CHUNK);
    size_t *lens = malloc(sizeof *lens * ROWS_CHUNK);
    size_t idx[ROWS_CHUNK];
    spStatus st = SP_OK;
    if (!blobs || !row || !names || !keys || !data || !lens)
        st = sp_Error(SP_ERR_NOMEM, "out of memory");
    for (size_t off = 0; st == SP_OK && off < d->n; off += ROWS_CHUNK) {
        int k = (int)(d->n - off < ROWS_CHUNK ? d->n - off : ROWS_CHUNK);
        for (int i = 0; st == SP_OK && i < k; i++) {
            size_t r = off + (size_t)i;
            const uint32_t at = 0;
            int32_t label;
            dataset_Gather(d, r, &at, 1, row, &label); /* a sparse row expanded */
            row[d->dim] = (float)label;
            idx[i] = r;
            data[i] = blobs + (size_t)i * cap;
            lens[i] = cap;
            st = wire_EncodeInto(blobs + (size_t)i * cap, cap, WIRE_F32, row, d->dim + 1, 0);
        }
        if (st == SP_OK && (st = rows_Keys(job, split, idx, k, names, keys)) == SP_OK &&
            (st = store_PutBlobs(s, keys, data, lens, k, 0)))
            st = sp_Wrap(st, "storing dataset rows");
    }
    free(blobs);
    free(row);
    free(names);
    free(keys);
    free(data);
    free(lens);
    return st;
}
