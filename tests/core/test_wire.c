/* ctest-label: unit (starts no server) */
/* test_wire.c - the tensor wire format: round trips and every rejection. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/crc32c.h"
#include "core/wire.h"

/* The table-driven path, exported by crc32c.c for exactly this comparison,
 * and each implementation by number (0 tables, 1 crc32 instruction, 2
 * folding; 0 returned when this CPU does not run it). */
uint32_t crc32c_Software(uint32_t crc, const void *data, size_t len);
int crc32c_Path(int which, uint32_t crc, const void *data, size_t len, uint32_t *out);

static void test_crc32c_known_answer(void **state)
{
    (void)state;
    assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c_Software(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c(0, "", 0), 0u);
    /* RFC 3720 B.4: 32 bytes of zeros. */
    uint8_t zeros[32] = {0};
    assert_int_equal(crc32c(0, zeros, sizeof zeros), 0x8A9136AAu);
}

static void test_crc32c_paths_agree_and_chain(void **state)
{
    (void)state;
    size_t n = 100003;
    uint8_t *b = malloc(n);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i * 131 + (i >> 7));
    /* Every alignment and tail length of both implementations. */
    for (size_t off = 0; off < 9; off++)
        for (size_t cut = 0; cut < 9; cut++)
            assert_int_equal(crc32c(0, b + off, n - off - cut),
                             crc32c_Software(0, b + off, n - off - cut));
    uint32_t whole = crc32c(0, b, n);
    uint32_t part = crc32c(crc32c(0, b, 777), b + 777, n - 777);
    assert_int_equal(whole, part);
    free(b);
}

/* Every implementation the CPU runs against the tables: every length up to
 * past the folding's 512-byte start and its 256/64/16-byte steps, at every
 * offset mod 8, a running crc carried in, and long buffers past the crc32
 * streams' 12 KiB groups. */
static void test_crc32c_every_implementation(void **state)
{
    (void)state;
    size_t n = 3 * 12288 + 1000;
    uint8_t *b = malloc(n + 8);
    assert_non_null(b);
    for (size_t i = 0; i < n + 8; i++)
        b[i] = (uint8_t)(i * 2654435761u >> 13);
    int ran = 0;
    for (int which = 1; which <= 2; which++) {
        uint32_t got;
        if (!crc32c_Path(which, 0, b, 1, &got))
            continue;
        ran++;
        for (size_t len = 0; len <= 1300; len++)
            for (size_t off = 0; off < 8; off += len < 600 ? 3 : 1) {
                assert_true(crc32c_Path(which, 0x12345678u, b + off, len, &got));
                assert_int_equal(got, crc32c_Software(0x12345678u, b + off, len));
            }
        for (size_t cut = 0; cut < 300; cut += 7) {
            assert_true(crc32c_Path(which, 7, b + 1, n - cut, &got));
            assert_int_equal(got, crc32c_Software(7, b + 1, n - cut));
        }
    }
    print_message("crc32c: %d hardware implementation(s) checked\n", ran);
    free(b);
}

static uint8_t *encode(wire_dtype dt, const void *data, uint64_t count, uint32_t extra,
                       size_t *len)
{
    uint8_t *buf = NULL;
    assert_int_equal(wire_Encode(dt, data, count, extra, &buf, len), SP_OK);
    assert_int_equal(*len, wire_EncodedSize(dt, count));
    return buf;
}

static void test_roundtrip_f32(void **state)
{
    (void)state;
    float v[1000];
    for (int i = 0; i < 1000; i++)
        v[i] = (float)i * 0.37f - 100.0f;
    v[3] = -0.0f;
    v[4] = 1e-40f; /* subnormal survives */
    size_t len;
    uint8_t *buf = encode(WIRE_F32, v, 1000, 0, &len);
    /* Header fields are little-endian on the wire whatever the host. */
    assert_memory_equal(buf, "SPT\x01", 4);
    assert_int_equal(buf[4], WIRE_VERSION);
    assert_int_equal(buf[6], WIRE_F32);
    assert_int_equal(buf[8] | buf[9] << 8, 1000);
    float *out = NULL;
    size_t count = 0;
    assert_int_equal(wire_DecodeF32(buf, len, 1000, 1, &out, &count), SP_OK);
    assert_int_equal(count, 1000);
    assert_memory_equal(out, v, sizeof v);
    free(out);
    /* expect_count 0 accepts any count. */
    assert_int_equal(wire_DecodeF32(buf, len, 0, 1, &out, &count), SP_OK);
    assert_int_equal(count, 1000);
    free(out);
    free(buf);
}

static void test_roundtrip_u8_i32_sparse(void **state)
{
    (void)state;
    uint8_t px[5] = {0, 1, 127, 128, 255};
    int32_t lab[4] = {0, -1, 9, INT32_MAX};
    struct { uint32_t i; float v; } sp[3] = {{0, 1.5f}, {7, -2.0f}, {99, 3.25f}};
    const struct { wire_dtype dt; const void *data; uint64_t n; uint32_t extra; size_t bytes; } c[] = {
        {WIRE_U8, px, 5, 0, sizeof px},
        {WIRE_I32, lab, 4, 0, sizeof lab},
        {WIRE_SPARSE_F32, sp, 3, 100, sizeof sp},
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
        size_t len;
        uint8_t *buf = encode(c[i].dt, c[i].data, c[i].n, c[i].extra, &len);
        wire_view v;
        assert_int_equal(wire_Parse(buf, len, &v), SP_OK);
        assert_int_equal(v.dtype, c[i].dt);
        assert_int_equal(v.count, c[i].n);
        assert_int_equal(v.extra, c[i].extra);
        assert_int_equal(v.payload_len, c[i].bytes);
        assert_memory_equal(v.payload, c[i].data, c[i].bytes);
        assert_int_equal(v.crc, crc32c(0, c[i].data, c[i].bytes));
        /* A non-f32 blob is not decoded as floats. */
        float *out = NULL;
        size_t n;
        assert_int_equal(wire_DecodeF32(buf, len, 0, 0, &out, &n), SP_ERR_INVALID);
        assert_null(out);
        free(buf);
    }
}

static void test_empty_tensor(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = encode(WIRE_F32, NULL, 0, 0, &len);
    assert_int_equal(len, WIRE_HEADER_SIZE);
    float *out = NULL;
    size_t n = 99;
    assert_int_equal(wire_DecodeF32(buf, len, 0, 1, &out, &n), SP_OK);
    assert_int_equal(n, 0);
    free(out);
    free(buf);
}

/* Encodes 64 floats for the corruption cases. */
static uint8_t *sample(size_t *len)
{
    float v[64];
    for (int i = 0; i < 64; i++)
        v[i] = (float)i;
    return encode(WIRE_F32, v, 64, 0, len);
}

static void expect_parse_fail(const uint8_t *buf, size_t len, const char *needle)
{
    wire_view v;
    assert_int_equal(wire_Parse(buf, len, &v), SP_ERR_FORMAT);
    if (!strstr(sp_LastError(), needle))
        fail_msg("error \"%s\" does not mention \"%s\"", sp_LastError(), needle);
    float *out = NULL;
    size_t n;
    assert_int_equal(wire_DecodeF32(buf, len, 0, 1, &out, &n), SP_ERR_FORMAT);
    assert_null(out);
}

static void test_truncated_and_trailing(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = sample(&len);
    expect_parse_fail(buf, len - 1, "truncated");
    expect_parse_fail(buf, 10, "header");
    expect_parse_fail(buf, 0, "header");
    uint8_t *big = malloc(len + 1);
    memcpy(big, buf, len);
    big[len] = 0;
    expect_parse_fail(big, len + 1, "trailing");
    free(big);
    free(buf);
}

static void test_flipped_bits(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = sample(&len);
    buf[WIRE_HEADER_SIZE + 37] ^= 0x10;
    expect_parse_fail(buf, len, "checksum");
    buf[WIRE_HEADER_SIZE + 37] ^= 0x10;
    buf[1] ^= 0x01;
    expect_parse_fail(buf, len, "magic");
    buf[1] ^= 0x01;
    /* A flipped checksum field is caught as well as a flipped payload. */
    buf[17] ^= 0x80;
    expect_parse_fail(buf, len, "checksum");
    buf[17] ^= 0x80;
    wire_view v;
    assert_int_equal(wire_Parse(buf, len, &v), SP_OK);
    free(buf);
}

static void test_bad_header_fields(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = sample(&len);
    uint8_t save[WIRE_HEADER_SIZE];
    memcpy(save, buf, sizeof save);

    buf[4] = 2; /* version */
    expect_parse_fail(buf, len, "version");
    memcpy(buf, save, sizeof save);

    buf[6] = 9; /* dtype */
    expect_parse_fail(buf, len, "dtype");
    memcpy(buf, save, sizeof save);

    buf[15] = 0x01; /* count 2^56 + 64 */
    expect_parse_fail(buf, len, "count");
    memcpy(buf, save, sizeof save);

    buf[20] = 1; /* reserved on a dense tensor */
    expect_parse_fail(buf, len, "reserved");
    memcpy(buf, save, sizeof save);

    /* A count that fits the limit but disagrees with the length. */
    buf[8] = 65;
    expect_parse_fail(buf, len, "truncated");
    free(buf);
}

static void test_decode_checks(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = sample(&len);
    float *out = NULL;
    size_t n;
    assert_int_equal(wire_DecodeF32(buf, len, 63, 1, &out, &n), SP_ERR_INVALID);
    assert_null(out);
    free(buf);

    float v[8] = {1, 2, 3, 4, 5, NAN, 7, 8};
    buf = encode(WIRE_F32, v, 8, 0, &len);
    assert_int_equal(wire_DecodeF32(buf, len, 8, 1, &out, &n), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "index 5"));
    assert_null(out);
    /* Without the check NaN is data like any other. */
    assert_int_equal(wire_DecodeF32(buf, len, 8, 0, &out, &n), SP_OK);
    assert_true(isnan(out[5]));
    free(out);
    out = NULL;
    free(buf);

    v[5] = 6;
    v[2] = -INFINITY;
    buf = encode(WIRE_F32, v, 8, 0, &len);
    assert_int_equal(wire_DecodeF32(buf, len, 8, 1, &out, &n), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "index 2"));
    free(buf);
}

static void test_encode_rejects(void **state)
{
    (void)state;
    float v[4] = {0};
    uint8_t *buf = NULL;
    size_t len;
    assert_int_equal(wire_Encode((wire_dtype)7, v, 4, 0, &buf, &len), SP_ERR_INVALID);
    assert_int_equal(wire_Encode(WIRE_F32, v, WIRE_MAX_COUNT + 1, 0, &buf, &len),
                     SP_ERR_TOO_LARGE);
    assert_int_equal(wire_Encode(WIRE_F32, v, 4, 5, &buf, &len), SP_ERR_INVALID);
    assert_null(buf);
    uint8_t small[WIRE_HEADER_SIZE + 15];
    assert_int_equal(wire_EncodeInto(small, sizeof small, WIRE_F32, v, 4, 0), SP_ERR_INVALID);
    assert_int_equal(wire_EncodeInto(small, sizeof small, WIRE_F32, v, 3, 0), SP_OK);
}

static void test_reseal(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = sample(&len);
    float x = 42.5f;
    memcpy(buf + WIRE_HEADER_SIZE + 8, &x, 4);
    wire_view v;
    assert_int_equal(wire_Parse(buf, len, &v), SP_ERR_FORMAT);
    wire_Reseal(buf, len);
    assert_int_equal(wire_Parse(buf, len, &v), SP_OK);
    float *out;
    size_t n;
    assert_int_equal(wire_DecodeF32(buf, len, 64, 1, &out, &n), SP_OK);
    assert_true(out[2] == 42.5f);
    free(out);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known_answer),
        cmocka_unit_test(test_crc32c_paths_agree_and_chain),
        cmocka_unit_test(test_crc32c_every_implementation),
        cmocka_unit_test(test_roundtrip_f32),
        cmocka_unit_test(test_roundtrip_u8_i32_sparse),
        cmocka_unit_test(test_empty_tensor),
        cmocka_unit_test(test_truncated_and_trailing),
        cmocka_unit_test(test_flipped_bits),
        cmocka_unit_test(test_bad_header_fields),
        cmocka_unit_test(test_decode_checks),
        cmocka_unit_test(test_encode_rejects),
        cmocka_unit_test(test_reseal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
