/* tensor.c - flat float32 vector ops (tensor.h).
 *
 * BLAS level-1 calls take int lengths, so long vectors are fed to them in
 * chunks that fit; dot products accumulate in double for stable sums over
 * millions of parameters. */
#include "core/tensor.h"
#include "core/kernels.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Largest piece handed to one BLAS call (blasint may be 32-bit). */
#define TENSOR_CHUNK ((size_t)1 << 30)

void tensor_Axpy(size_t n, float a, const float *x, float *y)
{
    for (size_t off = 0; off < n; off += TENSOR_CHUNK) {
        size_t len = n - off < TENSOR_CHUNK ? n - off : TENSOR_CHUNK;
        cblas_saxpy((int)len, a, x + off, 1, y + off, 1);
    }
}

void tensor_Scale(size_t n, float a, float *x)
{
    for (size_t off = 0; off < n; off += TENSOR_CHUNK) {
        size_t len = n - off < TENSOR_CHUNK ? n - off : TENSOR_CHUNK;
        cblas_sscal((int)len, a, x + off, 1);
    }
}

double tensor_Dot(size_t n, const float *x, const float *y)
{
    /* dsdot accumulates float inputs in double precision. */
    double sum = 0.0;
    for (size_t off = 0; off < n; off += TENSOR_CHUNK) {
        size_t len = n - off < TENSOR_CHUNK ? n - off : TENSOR_CHUNK;
        sum += cblas_dsdot((int)len, x + off, 1, y + off, 1);
    }
    return sum;
}

double tensor_Dist2(size_t n, const float *x, const float *y)
{
    /* Four independent double accumulators let the compiler pipeline the
     * loop while keeping double-precision sums. */
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        double d0 = (double)x[i] - y[i], d1 = (double)x[i + 1] - y[i + 1];
        double d2 = (double)x[i + 2] - y[i + 2], d3 = (double)x[i + 3] - y[i + 3];
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; i < n; i++) {
        double d = (double)x[i] - y[i];
        s0 += d * d;
    }
    return (s0 + s1) + (s2 + s3);
}

/* Inf and NaN are exactly the floats whose exponent bits are all set: with
 * the sign cleared their bit pattern is >= 0x7f800000, so adding 0x00800000
 * carries into bit 31. OR-ing those sums over every element leaves bit 31
 * set iff one was not finite - integer adds and ORs, four lanes at a time
 * (gcc's -O2 does not vectorize a reduction loop by itself, and this check
 * runs on every tensor read back from Redis). */
typedef uint32_t v4u __attribute__((vector_size(16)));

int tensor_AllFinite(size_t n, const float *x)
{
    const v4u mask = {0x7fffffffu, 0x7fffffffu, 0x7fffffffu, 0x7fffffffu};
    const v4u bias = {0x00800000u, 0x00800000u, 0x00800000u, 0x00800000u};
    v4u a0 = {0, 0, 0, 0}, a1 = a0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v4u u0, u1;
        memcpy(&u0, x + i, sizeof u0);
        memcpy(&u1, x + i + 4, sizeof u1);
        a0 |= (u0 & mask) + bias;
        a1 |= (u1 & mask) + bias;
    }
    a0 |= a1;
    uint32_t acc = a0[0] | a0[1] | a0[2] | a0[3];
    for (; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        acc |= (u & 0x7fffffffu) + 0x00800000u;
    }
    return !(acc & 0x80000000u);
}

void tensor_Mean(size_t n, int k, const float *const *xs, float *out)
{
    if (k <= 0) {
        memset(out, 0, n * sizeof *out);
        return;
    }
    kern_Mean(out, xs, k, n);
}

float *tensor_Alloc(size_t n)
{
    if (n > (SIZE_MAX - 64) / sizeof(float))
        return NULL;
    size_t bytes = n * sizeof(float);
    /* aligned_alloc wants a multiple of the alignment. */
    bytes = (bytes + 63) & ~(size_t)63;
    if (bytes == 0)
        bytes = 64;
    float *p = aligned_alloc(64, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}
