/* sparse_mean.c - sparse averages read and combined by the exchange steps. */
#include <stdlib.h>

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
