/* data_sparse.c - a sparse dataset in the shared Redis: row i of a split as
 * {job}:data:<split>:<i>, a sparse wire tensor (WIRE_SPARSE_F32) of dense
 * length dim + 1 holding the row's non-zeros and then the label at index
 * dim (always listed, as the dense rows' last float), so a row costs its
 * non-zeros, not its dimension. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/wire.h"
#include "steps/step_util.h"

#define SROWS_CHUNK 1000

/* Row r as interleaved (index, value) pairs, the label last. */
static size_t srows_Pairs(const dataset *d, size_t r, uint32_t *pairs)
{
    size_t n = 0;
    for (size_t k = d->ptr[r]; k < d->ptr[r + 1]; k++, n++) {
        pairs[2 * n] = d->col[k];
        memcpy(&pairs[2 * n + 1], &d->val[k], sizeof(float));
    }
    float label = (float)d->y[r];
    pairs[2 * n] = (uint32_t)d->dim;
    memcpy(&pairs[2 * n + 1], &label, sizeof label);
    return n + 1;
}

spStatus rows_UploadSparse(store *s, const char *job, const char *split, const dataset *d)
{
    if (!dataset_IsSparse(d) || d->dim >= UINT32_MAX)
        return sp_Error(SP_ERR_INVALID, "sparse rows: the dataset is not sparse");
    size_t widest = 0;
    for (size_t r = 0; r < d->n; r++)
        if (d->ptr[r + 1] - d->ptr[r] > widest)
            widest = d->ptr[r + 1] - d->ptr[r];
    uint32_t *pairs = malloc(sizeof *pairs * 2 * (widest + 1));
    uint8_t **blobs = calloc(SROWS_CHUNK, sizeof *blobs);
    size_t *lens = malloc(sizeof *lens * SROWS_CHUNK), idx[SROWS_CHUNK];
    char(*names)[ROWS_KEY_CAP] = malloc(sizeof *names * SROWS_CHUNK);
    const char **keys = malloc(sizeof *keys * SROWS_CHUNK);
    spStatus st = pairs && blobs && lens && names && keys
                      ? SP_OK
                      : sp_Error(SP_ERR_NOMEM, "out of memory");
    for (size_t off = 0; st == SP_OK && off < d->n; off += SROWS_CHUNK) {
        size_t k = d->n - off < SROWS_CHUNK ? d->n - off : SROWS_CHUNK;
        for (size_t i = 0; st == SP_OK && i < k; i++) {
            idx[i] = off + i;
            size_t n = srows_Pairs(d, off + i, pairs);
            st = wire_Encode(WIRE_SPARSE_F32, pairs, n, (uint32_t)d->dim + 1, &blobs[i],
                             &lens[i]);
        }
        if (st == SP_OK && (st = rows_Keys(job, split, idx, (int)k, names, keys)) == SP_OK &&
            (st = store_PutBlobs(s, keys, (const void *const *)blobs, lens, (int)k, 0)))
            st = sp_Wrap(st, "storing sparse dataset rows");
        for (size_t i = 0; i < k; i++) {
            free(blobs[i]);
            blobs[i] = NULL;
        }
    }
    free(pairs);
    free(blobs);
    free(lens);
    free(names);
    free(keys);
    return st;
}

/* Appends one row blob to the batch: its pairs but the last, checked, and
 * the label the last one holds. */
static spStatus srows_Add(const char *key, const uint8_t *blob, size_t len, size_t dim,
                          int classes, dataset_batch *buf, size_t row, int32_t *y)
{
    wire_view v;
    spStatus st = wire_Parse(blob, len, &v);
    if (st == SP_OK && v.dtype == WIRE_SPARSE_F32 && v.extra != dim + 1)
        st = sp_Error(SP_ERR_INVALID, "dense length %u, but the model reads %zu features and "
                      "a label", v.extra, dim);
    if (st == SP_OK)
        st = wire_CheckSparse(&v);
    uint32_t last = 0;
    float label = -1;
    if (st == SP_OK && v.count > 0) {
        memcpy(&last, v.payload + 8 * (v.count - 1), sizeof last);
        memcpy(&label, v.payload + 8 * (v.count - 1) + 4, sizeof label);
    }
    if (st == SP_OK && (v.count == 0 || last != dim || !(label >= 0 && label < (float)classes) ||
                        label != floorf(label)))
        st = sp_Error(SP_ERR_INVALID, "no label in [0, %d) at index %zu", classes, dim);
    size_t n = st == SP_OK ? (size_t)v.count - 1 : 0, at = buf->ptr[row];
    if (st == SP_OK && at + n > buf->nnz_cap) {
        size_t cap = (at + n) * 2;
        uint32_t *c = realloc(buf->col, cap * sizeof *c);
        if (c)
            buf->col = c;
        float *f = c ? realloc(buf->val, cap * sizeof *f) : NULL;
        if (f)
            buf->val = f;
        if (!c || !f)
            st = sp_Error(SP_ERR_NOMEM, "out of memory for a sparse batch");
        else
            buf->nnz_cap = cap;
    }
    if (st)
        return sp_Wrap(st, "dataset row %s", key);
    for (size_t k = 0; k < n; k++) {
        memcpy(&buf->col[at + k], v.payload + 8 * k, sizeof(uint32_t));
        memcpy(&buf->val[at + k], v.payload + 8 * k + 4, sizeof(float));
    }
    buf->ptr[row + 1] = at + n;
    y[row] = (int32_t)label;
    return SP_OK;
}

spStatus rows_FetchSparse(store *shared, const char *job, const char *split, const size_t *idx,
                          size_t b, size_t dim, int classes, dataset_batch *buf, csr_rows *out,
                          int32_t *y)
{
    if (b + 1 > buf->rows_cap) {
        size_t *p = realloc(buf->ptr, sizeof *p * (b + 1));
        if (!p)
            return sp_Error(SP_ERR_NOMEM, "out of memory for %zu rows", b);
        buf->ptr = p;
        buf->rows_cap = b + 1;
    }
    buf->ptr[0] = 0;
    char(*names)[ROWS_KEY_CAP] = malloc(sizeof *names * SROWS_CHUNK);
    const char **keys = malloc(sizeof *keys * SROWS_CHUNK);
    uint8_t **blobs = calloc(SROWS_CHUNK, sizeof *blobs);
    size_t *lens = malloc(sizeof *lens * SROWS_CHUNK);
    spStatus st = names && keys && blobs && lens ? SP_OK
                                                 : sp_Error(SP_ERR_NOMEM, "out of memory");
    for (size_t off = 0; st == SP_OK && off < b; off += SROWS_CHUNK) {
        size_t k = b - off < SROWS_CHUNK ? b - off : SROWS_CHUNK;
        if ((st = rows_Keys(job, split, idx + off, (int)k, names, keys)))
            break;
        st = store_GetBlobs(shared, keys, (int)k, blobs, lens);
        if (st == SP_ERR_NOT_FOUND)
            st = sp_Wrap(st, "a dataset row is missing (was init run for this job and shared "
                             "redis?)");
        for (size_t i = 0; st == SP_OK && i < k; i++)
            st = srows_Add(keys[i], blobs[i], lens[i], dim, classes, buf, off + i, y);
        for (size_t i = 0; i < k; i++) {
            free(blobs[i]);
            blobs[i] = NULL;
        }
    }
    free(names);
    free(keys);
    free(blobs);
    free(lens);
    if (st)
        return st;
    out->n = b;
    out->ptr = buf->ptr;
    out->col = buf->col;
    out->val = buf->val;
    return SP_OK;
}
