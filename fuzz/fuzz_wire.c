/* fuzz_wire.c - the tensor wire format (core/wire.h) on arbitrary bytes.
 *
 * Every blob read back from Redis goes through wire_Parse / wire_DecodeF32,
 * and a peer's database may hold anything. Random bytes almost never carry a
 * valid CRC, so each input is also tried with its checksum recomputed: that
 * lets the fuzzer reach the dtype, length and NaN checks behind the CRC gate.
 * Properties checked besides "no crash": a parsed view describes exactly the
 * bytes it was given, and re-encoding a parsed blob reproduces it byte for
 * byte (encode and parse agree on the format). */
#include <math.h>
#include <string.h>

#include "core/wire.h"
#include "fuzz_util.h"

static void check_View(const uint8_t *buf, size_t len, const wire_view *v)
{
    size_t elem = wire_ElemSize(v->dtype);
    FZ_CHECK(elem != 0, "dtype %d", (int)v->dtype);
    FZ_CHECK(v->payload == buf + WIRE_HEADER_SIZE, "payload pointer");
    FZ_CHECK(v->payload_len == v->count * elem, "payload %zu for %llu", v->payload_len,
             (unsigned long long)v->count);
    FZ_CHECK(len == WIRE_HEADER_SIZE + v->payload_len, "len %zu", len);
    FZ_CHECK(v->extra == 0 || v->dtype == WIRE_SPARSE_F32, "extra %u", v->extra);
}

/* Encoding what was parsed must give the same bytes back. */
static void check_RoundTrip(const uint8_t *buf, size_t len, const wire_view *v)
{
    uint8_t *again = NULL;
    size_t again_len = 0;
    /* payload is in wire (little-endian) order; on a little-endian host
     * that is host order too, which is all the fuzzer runs on. */
    spStatus s = wire_Encode(v->dtype, v->payload, v->count, v->extra, &again, &again_len);
    FZ_CHECK(s == SP_OK, "re-encode failed: %s", sp_LastError());
    FZ_CHECK(again_len == len && memcmp(again, buf, len) == 0, "re-encoded blob differs");
    free(again);
}

static void check_Decode(const uint8_t *buf, size_t len, const wire_view *parsed, int parse_ok)
{
    for (int reject = 0; reject <= 1; reject++) {
        float *f = NULL;
        size_t n = 0;
        spStatus s = wire_DecodeF32(buf, len, 0, reject, &f, &n);
        if (s != SP_OK) {
            FZ_CHECK(f == NULL, "output set on failure");
            continue;
        }
        FZ_CHECK(parse_ok && parsed->dtype == WIRE_F32 && n == parsed->count,
                 "decode accepted what parse rejected");
        for (size_t i = 0; reject && i < n; i++)
            FZ_CHECK(isfinite(f[i]), "non-finite value kept at %zu", i);
        /* A wrong expected count must be refused, never truncated. */
        float *g = NULL;
        size_t m = 0;
        FZ_CHECK(wire_DecodeF32(buf, len, (uint64_t)n + 1, 0, &g, &m) != SP_OK,
                 "count %zu accepted as %zu", n, n + 1);
        free(g);
        free(f);
    }
}

static void fuzz_One(const uint8_t *buf, size_t len)
{
    wire_view v;
    memset(&v, 0, sizeof v);
    int ok = wire_Parse(buf, len, &v) == SP_OK;
    if (ok) {
        check_View(buf, len, &v);
        check_RoundTrip(buf, len, &v);
    }
    check_Decode(buf, len, &v, ok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_One(data, size);
    if (size < WIRE_HEADER_SIZE)
        return 0;
    /* An exact-size heap copy, so ASan catches a read one past the end. */
    uint8_t *sealed = malloc(size);
    if (!sealed)
        return 0;
    memcpy(sealed, data, size);
    wire_Reseal(sealed, size);
    fuzz_One(sealed, size);
    free(sealed);
    return 0;
}
