/* crc32c.c - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * Three implementations behind one entry point: carry-less multiplication
 * folding 256 bytes at a time (AVX-512 VPCLMULQDQ) when the CPU has it,
 * else the SSE4.2 crc32 instruction (8 bytes per instruction, three streams
 * at once), else slicing-by-8 tables. The choice is made once at load time,
 * so the file builds without -m flags and the binary still runs on CPUs
 * lacking them. This file depends on nothing but libc because the Redis
 * module compiles it in too. */
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
#include <immintrin.h>

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
    /* No alignment prologue: unaligned 8-byte loads cost nothing here, and
     * a caller's chunks of whole lane groups stay whole (Redis values start
     * at odd addresses). */
    uint64_t c = crc;
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

/* Folding. Bytes are the coefficients of a polynomial M, the first byte's
 * lowest bit the highest power; the CRC is M * x^32 mod P, so any 16-byte
 * value congruent to the part read so far (shifted to its place) can stand
 * for it. Loaded little-endian, 16 bytes X = H * x^64 + L (H: the first 8)
 * sit bit-reversed in a register, and a carry-less product of two such
 * 64-bit fields comes out one power short. So X moved D bits further,
 * X * x^D = H * x^(64+D) + L * x^D, is congruent to
 *   clmul(H, k(64+D)) ^ clmul(L, k(D)),  k(e) = reflect32(x^(e-1) mod P) << 32,
 * a 128-bit value to XOR into the 16 bytes found D bits on. Four 512-bit
 * accumulators fold 2048 bits ahead; at the end they fold into one and its
 * four 128-bit lanes into one, whose 16 bytes, fed to the crc32
 * instruction from 0, give the CRC of everything folded. */
static uint64_t fold_k[3][2]; /* {k(64+D), k(D)} for D = 2048, 512, 128 */

static uint32_t reflect32(uint32_t v)
{
    uint32_t r = 0;
    for (int i = 0; i < 32; i++)
        r |= (v >> i & 1u) << (31 - i);
    return r;
}

static uint64_t fold_K(unsigned e)
{
    uint64_t r = 1; /* x^(e-1) mod P, P = x^32 + the normal form 0x1EDC6F41 */
    for (unsigned i = 1; i < e; i++) {
        r <<= 1;
        if (r >> 32)
            r ^= 0x11EDC6F41ull;
    }
    return (uint64_t)reflect32((uint32_t)r) << 32;
}

static void fold_Init(void)
{
    const unsigned d[3] = {2048, 512, 128};
    for (int i = 0; i < 3; i++) {
        fold_k[i][0] = fold_K(64 + d[i]);
        fold_k[i][1] = fold_K(d[i]);
    }
}

#define CRC_ZMM __attribute__((target("sse4.2,pclmul,avx512f,vpclmulqdq")))

CRC_ZMM static inline __m512i fold_Zmm(__m512i x, __m512i k, __m512i next)
{
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00),
                                     _mm512_clmulepi64_epi128(x, k, 0x11), next, 0x96);
}

CRC_ZMM static inline __m128i fold_Xmm(__m128i x, __m128i k, __m128i next)
{
    return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00),
                                       _mm_clmulepi64_si128(x, k, 0x11)), next);
}

CRC_ZMM static inline __m128i fold_Const(int i)
{
    return _mm_set_epi64x((long long)fold_k[i][1], (long long)fold_k[i][0]);
}

CRC_ZMM static uint32_t crc32c_Zmm(uint32_t crc, const uint8_t *p, size_t len)
{
    if (len < 512)
        return crc32c_Hw(crc, p, len);
    __m512i k2048 = _mm512_broadcast_i32x4(fold_Const(0));
    __m512i k512 = _mm512_broadcast_i32x4(fold_Const(1));
    __m128i k128 = fold_Const(2);
    __m512i z0 = _mm512_loadu_si512(p), z1 = _mm512_loadu_si512(p + 64);
    __m512i z2 = _mm512_loadu_si512(p + 128), z3 = _mm512_loadu_si512(p + 192);
    z0 = _mm512_xor_si512(z0, _mm512_castsi128_si512(_mm_cvtsi32_si128((int)crc)));
    for (p += 256, len -= 256; len >= 256; p += 256, len -= 256) {
        z0 = fold_Zmm(z0, k2048, _mm512_loadu_si512(p));
        z1 = fold_Zmm(z1, k2048, _mm512_loadu_si512(p + 64));
        z2 = fold_Zmm(z2, k2048, _mm512_loadu_si512(p + 128));
        z3 = fold_Zmm(z3, k2048, _mm512_loadu_si512(p + 192));
    }
    z3 = fold_Zmm(fold_Zmm(fold_Zmm(z0, k512, z1), k512, z2), k512, z3);
    for (; len >= 64; p += 64, len -= 64)
        z3 = fold_Zmm(z3, k512, _mm512_loadu_si512(p));
    __m128i x = _mm512_extracti32x4_epi32(z3, 0);
    x = fold_Xmm(x, k128, _mm512_extracti32x4_epi32(z3, 1));
    x = fold_Xmm(x, k128, _mm512_extracti32x4_epi32(z3, 2));
    x = fold_Xmm(x, k128, _mm512_extracti32x4_epi32(z3, 3));
    for (; len >= 16; p += 16, len -= 16)
        x = fold_Xmm(x, k128, _mm_loadu_si128((const __m128i *)p));
    uint64_t c = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(x));
    c = _mm_crc32_u64(c, (uint64_t)_mm_extract_epi64(x, 1));
    /* Clean upper register halves: legacy SSE code after this (the caller's
     * float loops, built for baseline x86-64) would otherwise run 2-3x
     * slower. GCC inserts no vzeroupper before this tail call itself. */
    _mm256_zeroupper();
    return crc32c_Hw((uint32_t)c, p, len);
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
    if (__builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul") &&
        __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("vpclmulqdq")) {
        fold_Init();
        crc_impl = crc32c_Zmm;
    }
#endif
}

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
    /* Pre/post inversion like zlib's crc32(): a running value chains. */
    return ~crc_impl(~crc, (const uint8_t *)data, len);
}

/* Exposed for tests that compare the paths (not in the header on purpose). */
uint32_t crc32c_Software(uint32_t crc, const void *data, size_t len);
uint32_t crc32c_Software(uint32_t crc, const void *data, size_t len)
{
    return ~crc32c_Sw(~crc, (const uint8_t *)data, len);
}

/* The CRC by one implementation: 0 the tables, 1 the crc32 instruction, 2
 * folding; returns 0 when this CPU does not run that one. */
int crc32c_Path(int which, uint32_t crc, const void *data, size_t len, uint32_t *out);
int crc32c_Path(int which, uint32_t crc, const void *data, size_t len, uint32_t *out)
{
    crc_fn f = which == 0 ? crc32c_Sw : NULL;
#if defined(__x86_64__)
    if (which == 1 && crc_impl != crc32c_Sw)
        f = crc32c_Hw;
    if (which == 2 && crc_impl == crc32c_Zmm)
        f = crc32c_Zmm;
#endif
    if (f)
        *out = ~f(~crc, (const uint8_t *)data, len);
    return f != NULL;
}
