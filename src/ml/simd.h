/* simd.h - 4-lane float vectors (GCC/Clang vector extensions) for the
 * elementwise loops of src/ml. Native on SSE2 and NEON, so the loops are
 * SIMD on any 64-bit target without relying on the optimizer's cost model
 * (-O2 does not vectorize loops of unknown trip count). Loads and stores go
 * through memcpy: no alignment is assumed. Internal to src/ml. */
#ifndef SPIRT_ML_SIMD_H
#define SPIRT_ML_SIMD_H

#include <stdint.h>
#include <string.h>

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4f v4_Load(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void v4_Store(float *p, v4f v) { memcpy(p, &v, sizeof v); }
static inline v4f v4_Splat(float x) { return (v4f){x, x, x, x}; }
static inline v4f v4_Select(v4i mask, v4f a, v4f b)
{
    return (v4f)(((v4i)a & mask) | ((v4i)b & ~mask));
}
static inline v4f v4_Max(v4f a, v4f b) { return v4_Select(a > b, a, b); }
static inline float v4_Sum(v4f v) { return (v[0] + v[2]) + (v[1] + v[3]); }

#endif
