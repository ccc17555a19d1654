/* aggregate.h - combining K gradient vectors into one.
 *
 * mean is what honest peers need; the robust rules bound what f Byzantine
 * (poisoned) inputs can do: coordinate-wise trimmed mean drops the beta
 * largest and smallest values per coordinate, coordinate-wise median takes
 * the middle, Krum picks the input closest to its K-f-2 nearest neighbours
 * and multi-Krum averages the m best-scored inputs. */
#ifndef SPIRT_AGGREGATE_H
#define SPIRT_AGGREGATE_H

#include <stddef.h>

#include "core/status.h"

typedef enum {
    AGG_MEAN = 1,
    AGG_TRIMMED_MEAN = 2,
    AGG_MEDIAN = 3,
    AGG_KRUM = 4,
    AGG_MULTI_KRUM = 5
} agg_kind;

typedef struct {
    agg_kind kind;
    int trim;   /* trimmed mean: values dropped at each end per coordinate (beta) */
    int f;      /* Krum: assumed Byzantine inputs */
    int m;      /* multi-Krum: inputs averaged (0 = K - f) */
} agg_config;

/* "mean" | "trimmed-mean" | "median" | "krum" | "multi-krum". */
spStatus agg_ParseKind(const char *name, agg_kind *out);
const char *agg_KindName(agg_kind k);

/* out = rule(xs[0..k-1]), each of n floats. Invalid parameters for k
 * (trim*2 >= k, Krum with k < f+3, ...) are SP_ERR_INVALID with a message.
 * `selected` (optional, k ints) is set to 1 for inputs Krum/multi-Krum kept. */
spStatus agg_Apply(const agg_config *c, size_t n, int k, const float *const *xs, float *out,
                   int *selected);

#endif
