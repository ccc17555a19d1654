/* mlless_filter.c - the MLLESS significance filter (mlless.h). */
#include <math.h>

#include "steps/mlless.h"

float mlless_Threshold(float v, long t)
{
    return (float)((double)v / sqrt((double)t + 1.0));
}

size_t mlless_Filter(float *acc, const float *g, const float *w, size_t n, float lr, float thr,
                     uint32_t *idx, float *val)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        float a = g ? acc[i] + g[i] : acc[i];
        /* Multiplied out instead of dividing by w_i: no special case for a
         * zero weight, and no division per coordinate. */
        if (fabsf(lr * a) > thr * fabsf(w[i])) {
            idx[k] = (uint32_t)i;
            val[k++] = a;
            a = 0;
        }
        acc[i] = a;
    }
    return k;
}
