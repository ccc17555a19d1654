/* sparse_mean.c - sparse averages read and combined by the exchange steps. */
#include <stdlib.h>
#include <string.h>

#include "core/kernels.h"
#include "core/wire.h"
#include "steps/sparse_mean.h"

spStatus sparse_Get(store *s, const char *key, size_t n, uint8_t **blob, size_t *len)
{
    wire_view v;
    spStatus st = store_GetBlob(s, key, blob, len);
    if (st)
        return st;
    if ((st = wire_Parse(*blob, *len, &v)) == SP_OK && (st = wire_CheckSparse(&v)) == SP_OK &&
        v.extra != n)
        st = sp_Error(SP_ERR_INVALID, "a sparse tensor of length %u, not the model's %zu",
                      v.extra, n);
    if (st) {
        free(*blob);
        *blob = NULL;
    }
    return st;
}

spStatus sparse_Mean(uint8_t *const *blobs, int k, size_t n, uint8_t **out, size_t *len)
{
    const unsigned char **in = calloc((size_t)k, sizeof *in);
    size_t *counts = calloc((size_t)k, sizeof *counts), *pos = calloc((size_t)k, sizeof *pos);
    size_t cap = 0;
    spStatus st = in && counts && pos && k > 0 ? SP_OK
                                               : sp_Error(SP_ERR_NOMEM, "out of memory");
    for (int i = 0; st == SP_OK && i < k; i++) {
        wire_view v;
        wire_ParseHeader(blobs[i], &v); /* checked whole by sparse_Get */
        in[i] = blobs[i] + WIRE_HEADER_SIZE;
        counts[i] = (size_t)v.count;
        cap += counts[i];
    }
    uint8_t *o = st == SP_OK ? malloc(WIRE_HEADER_SIZE + cap * KERN_PAIR + 1) : NULL;
    if (st == SP_OK && !o)
        st = sp_Error(SP_ERR_NOMEM, "out of memory for a sparse mean of %zu pairs", cap);
    if (st == SP_OK) {
        size_t m = kern_MeanSparse(o + WIRE_HEADER_SIZE, in, counts, k, pos);
        *len = WIRE_HEADER_SIZE + m * KERN_PAIR;
        wire_PutHeader(o, WIRE_SPARSE_F32, m, 0, (uint32_t)n);
        wire_Reseal(o, *len);
        wire_view v;
        if (wire_Parse(o, *len, &v) != SP_OK || wire_CheckSparse(&v) != SP_OK)
            st = sp_Error(SP_ERR_INVALID, "the mean of the sparse averages is not finite; "
                          "nothing stored");
    }
    if (st)
        free(o);
    else
        *out = o;
    free(in);
    free(counts);
    free(pos);
    return st;
}

/* First pair of the payload (count pairs) whose index is >= at. */
static size_t pair_LowerBound(const uint8_t *payload, size_t count, size_t at)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t i;
        memcpy(&i, payload + KERN_PAIR * mid, sizeof i);
        if (i < at)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A new blob of `count` pairs copied from payload, dense length n. */
static spStatus pairs_Blob(const uint8_t *payload, size_t count, uint32_t n, uint8_t **out,
                           size_t *len)
{
    *len = WIRE_HEADER_SIZE + count * KERN_PAIR;
    if (!(*out = malloc(*len)))
        return sp_Error(SP_ERR_NOMEM, "out of memory for %zu pairs", count);
    if (count)
        memcpy(*out + WIRE_HEADER_SIZE, payload, count * KERN_PAIR);
    wire_PutHeader(*out, WIRE_SPARSE_F32, count, 0, n);
    wire_Reseal(*out, *len);
    return SP_OK;
}

spStatus sparse_Slice(const uint8_t *blob, size_t from, size_t to, uint8_t **out, size_t *len)
{
    wire_view v;
    wire_ParseHeader(blob, &v); /* checked whole by sparse_Get */
    const uint8_t *p = blob + WIRE_HEADER_SIZE;
    size_t a = pair_LowerBound(p, (size_t)v.count, from);
    size_t b = pair_LowerBound(p, (size_t)v.count, to);
    return pairs_Blob(p + KERN_PAIR * a, b - a, v.extra, out, len);
}

spStatus sparse_Concat(uint8_t *const *blobs, int k, size_t n, uint8_t **out, size_t *len)
{
    size_t total = 0;
    for (int i = 0; i < k; i++) {
        wire_view v;
        wire_ParseHeader(blobs[i], &v);
        total += (size_t)v.count;
    }
    uint8_t *joined = malloc(total * KERN_PAIR + 1);
    if (!joined)
        return sp_Error(SP_ERR_NOMEM, "out of memory for %zu pairs", total);
    size_t at = 0;
    for (int i = 0; i < k; i++) {
        wire_view v;
        wire_ParseHeader(blobs[i], &v);
        memcpy(joined + at, blobs[i] + WIRE_HEADER_SIZE, (size_t)v.count * KERN_PAIR);
        at += (size_t)v.count * KERN_PAIR;
    }
    spStatus st = pairs_Blob(joined, total, (uint32_t)n, out, len);
    free(joined);
    if (st == SP_OK) {
        wire_view v;
        if (wire_Parse(*out, *len, &v) != SP_OK || (st = wire_CheckSparse(&v)) != SP_OK) {
            free(*out);
            *out = NULL;
            st = sp_Wrap(st ? st : SP_ERR_INVALID, "joined chunks");
        }
    }
    return st;
}
