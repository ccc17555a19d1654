/* sparse_wire.c - MLLESS sparse updates in the wire format (mlless.h):
 * dtype WIRE_SPARSE_F32, pairs of (uint32 index, float32 value), dense
 * length in the header's extra field. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/wire.h"
#include "steps/mlless.h"

spStatus sparse_Encode(const uint32_t *idx, const float *val, size_t k, size_t n, uint8_t **out,
                       size_t *len)
{
    if (n > UINT32_MAX || k > n)
        return sp_Error(SP_ERR_INVALID, "sparse: %zu pairs for a dense length of %zu", k, n);
    /* Interleaved host-order pairs, as wire_Encode expects for this dtype. */
    uint32_t *pairs = malloc(sizeof *pairs * 2 * (k ? k : 1));
    if (!pairs)
        return sp_Error(SP_ERR_NOMEM, "sparse: out of memory for %zu pairs", k);
    for (size_t j = 0; j < k; j++) {
        pairs[2 * j] = idx[j];
        memcpy(&pairs[2 * j + 1], &val[j], sizeof(float));
    }
    spStatus st = wire_Encode(WIRE_SPARSE_F32, pairs, k, (uint32_t)n, out, len);
    free(pairs);
    return st;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Validates the whole blob before anyone uses a pair: dtype, dense length,
 * increasing in-range indices, finite values. */
static spStatus sparse_Check(const uint8_t *blob, size_t len, size_t n, wire_view *v)
{
    spStatus st = wire_Parse(blob, len, v);
    if (st)
        return st;
    if (v->dtype == WIRE_SPARSE_F32 && v->extra != n)
        return sp_Error(SP_ERR_INVALID, "sparse: dense length %u, expected %zu", v->extra, n);
    return wire_CheckSparse(v);
}

spStatus sparse_Decode(const uint8_t *blob, size_t len, size_t n, uint32_t **idx, float **val,
                       size_t *k)
{
    wire_view v;
    spStatus st = sparse_Check(blob, len, n, &v);
    if (st)
        return st;
    size_t c = (size_t)v.count;
    uint32_t *ix = malloc(sizeof *ix * (c ? c : 1));
    float *vx = malloc(sizeof *vx * (c ? c : 1));
    if (!ix || !vx) {
        free(ix);
        free(vx);
        return sp_Error(SP_ERR_NOMEM, "sparse: out of memory for %zu pairs", c);
    }
    for (size_t j = 0; j < c; j++) {
        uint32_t bits = le32(v.payload + 8 * j + 4);
        ix[j] = le32(v.payload + 8 * j);
        memcpy(&vx[j], &bits, sizeof bits);
    }
    *idx = ix;
    *val = vx;
    *k = c;
    return SP_OK;
}

spStatus sparse_AddInto(const uint8_t *blob, size_t len, size_t n, float scale, float *dense,
                        uint8_t *touched, size_t *k)
{
    wire_view v;
    spStatus st = sparse_Check(blob, len, n, &v);
    if (st)
        return st;
    for (uint64_t j = 0; j < v.count; j++) {
        uint32_t bits = le32(v.payload + 8 * j + 4);
        float x;
        memcpy(&x, &bits, sizeof x);
        uint32_t i = le32(v.payload + 8 * j);
        dense[i] += scale * x;
        if (touched)
            touched[i] = 1;
    }
    *k = (size_t)v.count;
    return SP_OK;
}
