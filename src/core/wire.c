/* wire.c - encode, validate and decode the binary tensor format (wire.h).
 *
 * Every integer on the wire is little-endian. Header fields are written and
 * read byte by byte; payload words are copied with memcpy on little-endian
 * hosts and byte-swapped elsewhere. Depends only on crc32c and status,
 * because the Redis module compiles this file in. */
#include "core/wire.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define WIRE_HOST_LE 1
#else
#define WIRE_HOST_LE 0
#endif

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

/* Copies a payload between host and wire order; every multi-byte dtype is
 * made of 4-byte words (a sparse pair is two), so one swap rule covers all. */
static void copy_words(uint8_t *dst, const uint8_t *src, size_t bytes, size_t elem)
{
    if (WIRE_HOST_LE || elem == 1) {
        memcpy(dst, src, bytes);
        return;
    }
    for (size_t i = 0; i + 4 <= bytes; i += 4) {
        dst[i] = src[i + 3];
        dst[i + 1] = src[i + 2];
        dst[i + 2] = src[i + 1];
        dst[i + 3] = src[i];
    }
}

size_t wire_ElemSize(wire_dtype dt)
{
    switch (dt) {
    case WIRE_F32: return 4;
    case WIRE_U8: return 1;
    case WIRE_I32: return 4;
    case WIRE_SPARSE_F32: return 8;
    }
    return 0;
}

size_t wire_EncodedSize(wire_dtype dt, uint64_t count)
{
    return WIRE_HEADER_SIZE + (size_t)count * wire_ElemSize(dt);
}

static spStatus check_encode_args(wire_dtype dt, const void *data, uint64_t count, uint32_t extra)
{
    if (wire_ElemSize(dt) == 0)
        return sp_Error(SP_ERR_INVALID, "wire: unknown dtype %d", (int)dt);
    if (count > WIRE_MAX_COUNT)
        return sp_Error(SP_ERR_TOO_LARGE, "wire: count %llu exceeds the limit %llu",
                        (unsigned long long)count, (unsigned long long)WIRE_MAX_COUNT);
    if (count > 0 && !data)
        return sp_Error(SP_ERR_INVALID, "wire: NULL data for %llu elements",
                        (unsigned long long)count);
    if (extra != 0 && dt != WIRE_SPARSE_F32)
        return sp_Error(SP_ERR_INVALID, "wire: extra field %u set on a dense dtype %d", extra,
                        (int)dt);
    return SP_OK;
}

spStatus wire_EncodeInto(uint8_t *buf, size_t cap, wire_dtype dt, const void *data,
                         uint64_t count, uint32_t extra)
{
    spStatus s = check_encode_args(dt, data, count, extra);
    if (s != SP_OK)
        return s;
    size_t need = wire_EncodedSize(dt, count);
    if (!buf || cap < need)
        return sp_Error(SP_ERR_INVALID, "wire: buffer of %zu bytes too small, need %zu", cap, need);
    size_t elem = wire_ElemSize(dt);
    size_t bytes = (size_t)count * elem;
    uint8_t *payload = buf + WIRE_HEADER_SIZE;
    if (bytes)
        copy_words(payload, data, bytes, elem);
    wire_PutHeader(buf, dt, count, crc32c(0, payload, bytes), extra);
    return SP_OK;
}

void wire_PutHeader(uint8_t *hdr, wire_dtype dt, uint64_t count, uint32_t crc, uint32_t extra)
{
    memcpy(hdr, WIRE_MAGIC, 4);
    put16(hdr + 4, WIRE_VERSION);
    put16(hdr + 6, (uint16_t)dt);
    put64(hdr + 8, count);
    put32(hdr + 16, crc);
    put32(hdr + 20, extra);
}

spStatus wire_Encode(wire_dtype dt, const void *data, uint64_t count, uint32_t extra,
                     uint8_t **out, size_t *out_len)
{
    spStatus s = check_encode_args(dt, data, count, extra);
    if (s != SP_OK)
        return s;
    size_t need = wire_EncodedSize(dt, count);
    uint8_t *buf = malloc(need);
    if (!buf)
        return sp_Error(SP_ERR_NOMEM, "wire: cannot allocate %zu bytes", need);
    s = wire_EncodeInto(buf, need, dt, data, count, extra);
    if (s != SP_OK) {
        free(buf);
        return s;
    }
    *out = buf;
    *out_len = need;
    return SP_OK;
}

spStatus wire_ParseHeader(const uint8_t *hdr, wire_view *v)
{
    if (memcmp(hdr, WIRE_MAGIC, 4) != 0)
        return sp_Error(SP_ERR_FORMAT, "wire: bad magic %02x %02x %02x %02x (not a spirt tensor)",
                        hdr[0], hdr[1], hdr[2], hdr[3]);
    unsigned version = get16(hdr + 4);
    if (version != WIRE_VERSION)
        return sp_Error(SP_ERR_FORMAT, "wire: unsupported version %u (expected %d)", version,
                        WIRE_VERSION);
    wire_dtype dt = (wire_dtype)get16(hdr + 6);
    size_t elem = wire_ElemSize(dt);
    if (elem == 0)
        return sp_Error(SP_ERR_FORMAT, "wire: unknown dtype %u", (unsigned)get16(hdr + 6));
    uint64_t count = get64(hdr + 8);
    if (count > WIRE_MAX_COUNT)
        return sp_Error(SP_ERR_FORMAT, "wire: count %llu exceeds the limit %llu",
                        (unsigned long long)count, (unsigned long long)WIRE_MAX_COUNT);
    uint32_t extra = get32(hdr + 20);
    if (extra != 0 && dt != WIRE_SPARSE_F32)
        return sp_Error(SP_ERR_FORMAT, "wire: reserved field is %u, must be 0 for dtype %d", extra,
                        (int)dt);
    v->dtype = dt;
    v->count = count;
    v->crc = get32(hdr + 16);
    v->extra = extra;
    v->payload = NULL;
    v->payload_len = (size_t)count * elem;
    return SP_OK;
}

spStatus wire_CheckCrc(const wire_view *v, uint32_t got)
{
    if (v->crc != got)
        return sp_Error(SP_ERR_FORMAT, "wire: checksum mismatch (header %08x, payload %08x)",
                        v->crc, got);
    return SP_OK;
}

spStatus wire_CheckPayload(const wire_view *v, const uint8_t *payload)
{
    return wire_CheckCrc(v, crc32c(0, payload, v->payload_len));
}

spStatus wire_ParseUnchecked(const uint8_t *buf, size_t len, wire_view *v)
{
    if (!buf || len < WIRE_HEADER_SIZE)
        return sp_Error(SP_ERR_FORMAT, "wire: blob of %zu bytes is shorter than the %d-byte header",
                        buf ? len : 0, WIRE_HEADER_SIZE);
    spStatus st = wire_ParseHeader(buf, v);
    if (st != SP_OK)
        return st;
    size_t bytes = v->payload_len;
    if (len - WIRE_HEADER_SIZE != bytes)
        return sp_Error(SP_ERR_FORMAT, "wire: %s payload: %zu bytes for %llu elements of %zu bytes",
                        len - WIRE_HEADER_SIZE < bytes ? "truncated" : "trailing bytes after",
                        len - WIRE_HEADER_SIZE, (unsigned long long)v->count,
                        wire_ElemSize(v->dtype));
    v->payload = buf + WIRE_HEADER_SIZE;
    return SP_OK;
}

spStatus wire_Parse(const uint8_t *buf, size_t len, wire_view *v)
{
    spStatus s = wire_ParseUnchecked(buf, len, v);
    if (s != SP_OK)
        return s;
    return wire_CheckPayload(v, v->payload);
}

spStatus wire_DecodeF32(const uint8_t *buf, size_t len, uint64_t expect_count,
                        int reject_nonfinite, float **out, size_t *count)
{
    wire_view v;
    spStatus s = wire_Parse(buf, len, &v);
    if (s != SP_OK)
        return s;
    if (v.dtype != WIRE_F32)
        return sp_Error(SP_ERR_INVALID, "wire: expected a dense float32 tensor, got dtype %d",
                        (int)v.dtype);
    if (expect_count != 0 && v.count != expect_count)
        return sp_Error(SP_ERR_INVALID, "wire: tensor has %llu elements, expected %llu",
                        (unsigned long long)v.count, (unsigned long long)expect_count);
    /* malloc(0) may return NULL; keep a valid pointer for empty tensors. */
    float *f = malloc(v.payload_len ? v.payload_len : 1);
    if (!f)
        return sp_Error(SP_ERR_NOMEM, "wire: cannot allocate %zu bytes", v.payload_len);
    if (v.payload_len)
        copy_words((uint8_t *)f, v.payload, v.payload_len, 4);
    if (reject_nonfinite) {
        for (uint64_t i = 0; i < v.count; i++) {
            if (!isfinite(f[i])) {
                s = sp_Error(SP_ERR_INVALID, "wire: non-finite value %s at index %llu",
                             isnan(f[i]) ? "NaN" : "Inf", (unsigned long long)i);
                free(f);
                return s;
            }
        }
    }
    *out = f;
    *count = (size_t)v.count;
    return SP_OK;
}

void wire_Reseal(uint8_t *buf, size_t len)
{
    if (!buf || len < WIRE_HEADER_SIZE)
        return;
    wire_SetChecksum(buf, crc32c(0, buf + WIRE_HEADER_SIZE, len - WIRE_HEADER_SIZE));
}

void wire_SetChecksum(uint8_t *buf, uint32_t crc) { put32(buf + 16, crc); }

spStatus wire_CheckSparse(const wire_view *v)
{
    if (v->dtype != WIRE_SPARSE_F32)
        return sp_Error(SP_ERR_INVALID, "sparse: expected a sparse tensor, got dtype %d",
                        (int)v->dtype);
    if (v->count > v->extra)
        return sp_Error(SP_ERR_INVALID, "sparse: %llu pairs for a dense length of %u",
                        (unsigned long long)v->count, v->extra);
    uint32_t last = 0;
    for (uint64_t j = 0; j < v->count; j++) {
        const uint8_t *p = v->payload + 8 * j;
        uint32_t i = get32(p), bits = get32(p + 4);
        float x;
        memcpy(&x, &bits, sizeof x);
        if (i >= v->extra || (j > 0 && i <= last))
            return sp_Error(SP_ERR_INVALID, "sparse: pair %llu has index %u (dense length %u, "
                            "indices must increase)", (unsigned long long)j, i, v->extra);
        if ((bits & 0x7f800000u) == 0x7f800000u)
            return sp_Error(SP_ERR_INVALID, "sparse: pair %llu (index %u) is not finite",
                            (unsigned long long)j, i);
        last = i;
    }
    return SP_OK;
}
