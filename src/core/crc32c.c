/* crc32c.c - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * Two implementations behind one entry point: the SSE4.2 crc32 instruction
 * (8 bytes per instruction) when the CPU has it, else slicing-by-8 tables.
 * The choice is made once at load time, so the file builds without -msse4.2
 * and the binary still runs on CPUs lacking it. This file depends on nothing
 * but libc because the Redis module compiles it in too. */
#include "core/crc32c.h"

#include <string.h>

#define CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[8][256];

typedef uint32_t (*crc_fn)(uint32_t, const uint8_t *, size_t);

static uint32_t crc32c_Sw(uint32_t crc, const uint8_t *p, size_t len)
{
    while (len && ((uintptr_t)p & 7)) {
        crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        len--;
    }
    while (len >= 8) {
        /* Assemble the words byte-wise: host byte order never matters. */
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                      (uint32_t)p[7] << 24;
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
              crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
              crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

/* One crc32 instruction takes 3 cycles but a new one can start every
 * cycle: three independent streams over three lanes of a chunk keep it
 * busy (3x a single chain on long buffers). The register is linear in its
 * start value and the data, so crc(A || B) = shift(crc(A), |B|) ^ crc(B)
 * from 0, where shift advances the register over |B| zero bytes: for one
 * lane length that is a linear map of 32 bits, four byte-wise tables. */
#define CRC_LANE 4096
static uint32_t crc_shift[4][256];

static uint32_t lane_Shift(uint32_t c)
{
    return crc_shift[0][c & 0xff] ^ crc_shift[1][(c >> 8) & 0xff] ^
           crc_shift[2][(c >> 16) & 0xff] ^ crc_shift[3][c >> 24];
}

__attribute__((target("sse4.2"))) static void lane_ShiftInit(void)
{
    uint32_t basis[32];
    for (int b = 0; b < 32; b++) {
        uint64_t c = 1u << b;
        for (int i = 0; i < CRC_LANE / 8; i++)
            c = _mm_crc32_u64(c, 0);
        basis[b] = (uint32_t)c;
    }
    for (int byte = 0; byte < 4; byte++)
        for (int v = 0; v < 256; v++) {
            uint32_t x = 0;
            for (int bit = 0; bit < 8; bit++)
                if (v >> bit & 1)
                    x ^= basis[8 * byte + bit];
            crc_shift[byte][v] = x;
        }
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_Hw(uint32_t crc, const uint8_t *p,
                                                             size_t len)
{
    uint64_t c = crc;
    while (len && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    while (len >= 3 * CRC_LANE) {
        uint64_t c1 = 0, c2 = 0;
        for (size_t i = 0; i < CRC_LANE; i += 8) {
            uint64_t w0, w1, w2;
            memcpy(&w0, p + i, 8);
            memcpy(&w1, p + CRC_LANE + i, 8);
            memcpy(&w2, p + 2 * CRC_LANE + i, 8);
            c = _mm_crc32_u64(c, w0);
            c1 = _mm_crc32_u64(c1, w1);
            c2 = _mm_crc32_u64(c2, w2);
        }
        c = lane_Shift(lane_Shift((uint32_t)c) ^ (uint32_t)c1) ^ (uint32_t)c2;
        p += 3 * CRC_LANE;
        len -= 3 * CRC_LANE;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8); /* x86 is little-endian, which is what CRC-32C wants */
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    while (len--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return (uint32_t)c;
}
#endif

static crc_fn crc_impl = crc32c_Sw;

/* Runs before main() (and when the Redis module is dlopen'ed), so there is
 * no lazy-init race between threads. */
__attribute__((constructor)) static void crc32c_Init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        crc_table[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++)
            crc_table[t][i] = crc_table[0][crc_table[t - 1][i] & 0xff] ^ (crc_table[t - 1][i] >> 8);
#if defined(__x86_64__)
    __builtin_cpu_init(); /* required before __builtin_cpu_supports in a constructor */
    if (__builtin_cpu_supports("sse4.2")) {
        lane_ShiftInit();
        crc_impl = crc32c_Hw;
    }
#endif
}

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
    /* Pre/post inversion like zlib's crc32(): a running value chains. */
    return ~crc_impl(~crc, (const uint8_t *)data, len);
}

/* Exposed for tests that compare both paths (not in the header on purpose). */
uint32_t crc32c_Software(uint32_t crc, const void *data, size_t len);
uint32_t crc32c_Software(uint32_t crc, const void *data, size_t len)
{
    return ~crc32c_Sw(~crc, (const uint8_t *)data, len);
}
