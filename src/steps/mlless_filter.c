/* mlless_filter.c - the MLLESS significance threshold (mlless.h); the
 * filter itself is core/kernels.h kern_Filter. */
#include <math.h>

#include "steps/mlless.h"

float mlless_Threshold(float v, long t)
{
    return (float)((double)v / sqrt((double)t + 1.0));
}
