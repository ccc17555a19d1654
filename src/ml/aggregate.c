/* aggregate.c - mean and Byzantine-robust aggregation rules (aggregate.h).
 *
 * Inputs are K vectors of n floats with n up to millions and K small, so
 * every rule streams the inputs in blocks of coordinates that stay in cache
 * and sorts the K values of a coordinate with an insertion sort (a qsort
 * call per coordinate would cost more than the sort itself).
 * A NaN from a poisoned input sorts as +Inf, so the robust rules trim or
 * outvote it instead of letting it poison comparisons. Results are written
 * through a block buffer, so `out` may alias one of the inputs. */
#include "ml/aggregate.h"
#include "core/names.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/kernels.h"
#include "core/tensor.h"

#define AGG_BLOCK 2048
#define AGG_LANES 128
/* More inputs than this is not a peer count but a bug (and K*K scratch). */
#define AGG_MAX_INPUTS 1024

static const sp_name agg_names[] = {
    {AGG_MEAN, "mean"},     {AGG_TRIMMED_MEAN, "trimmed-mean"}, {AGG_MEDIAN, "median"},
    {AGG_KRUM, "krum"},     {AGG_MULTI_KRUM, "multi-krum"},
};

spStatus agg_ParseKind(const char *name, agg_kind *out)
{
    int v;
    if (names_Find(agg_names, NAMES_COUNT(agg_names), name, 0, &v)) {
        *out = (agg_kind)v;
        return SP_OK;
    }
    return sp_Error(SP_ERR_INVALID,
                    "unknown aggregation rule \"%s\" (expected mean, trimmed-mean, median, krum "
                    "or multi-krum)",
                    name ? name : "(null)");
}

const char *agg_KindName(agg_kind k) { return names_Of(agg_names, NAMES_COUNT(agg_names), k); }

/* out = mean of the given inputs, rounded like every mean in spirt
 * (core/kernels.h: the in-database average gives the same bits). */
static void agg_MeanOf(size_t n, int k, const float *const *xs, float *out)
{
    kern_Mean(out, (const ufloat *const *)xs, k, n);
}

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* row[0..AGG_LANES) = x[0..len) with NaN as +Inf, unused lanes zero. */
static void lanes_Load(float *row, const float *x, size_t len)
{
    size_t l = 0;
#if defined(__SSE2__)
    const __m128 inf = _mm_set1_ps(INFINITY);
    for (; l + 4 <= len; l += 4) {
        __m128 v = _mm_loadu_ps(x + l);
        __m128 nan = _mm_cmpunord_ps(v, v);
        _mm_store_ps(row + l, _mm_or_ps(_mm_and_ps(nan, inf), _mm_andnot_ps(nan, v)));
    }
#endif
    for (; l < len; l++)
        row[l] = isnan(x[l]) ? INFINITY : x[l];
    for (; l < AGG_LANES; l++)
        row[l] = 0;
}

/* One comparator of the network on every lane: a = min, b = max. */
static void lanes_MinMax(float *restrict a, float *restrict b)
{
#if defined(__SSE2__)
    for (int l = 0; l < AGG_LANES; l += 4) {
        __m128 x = _mm_load_ps(a + l), y = _mm_load_ps(b + l);
        _mm_store_ps(a + l, _mm_min_ps(x, y));
        _mm_store_ps(b + l, _mm_max_ps(x, y));
    }
#else
    for (int l = 0; l < AGG_LANES; l++) {
        float x = a[l], y = b[l];
        a[l] = x < y ? x : y;
        b[l] = x < y ? y : x;
    }
#endif
}

/* Batcher's odd-even merge sort as a list of compare-exchange pairs for any
 * k (comparators reaching past k are dropped, as if padded with +Inf).
 * Returns the number of pairs written to lo/hi; k=16 needs 63. */
static int network_Build(int k, int *lo, int *hi)
{
    int c = 0;
    for (int p = 1; p < k; p <<= 1)
        for (int q = p; q >= 1; q >>= 1)
            for (int j = q % p; j + q < k; j += 2 * q)
                for (int i = 0; i < q && i + j + q < k; i++)
                    if ((i + j) / (2 * p) == (i + j + q) / (2 * p)) {
                        lo[c] = i + j;
                        hi[c] = i + j + q;
                        c++;
                    }
    return c;
}

static int network_Size(int k)
{
    int c = 0;
    for (int p = 1; p < k; p <<= 1)
        for (int q = p; q >= 1; q >>= 1)
            for (int j = q % p; j + q < k; j += 2 * q)
                for (int i = 0; i < q && i + j + q < k; i++)
                    c += (i + j) / (2 * p) == (i + j + q) / (2 * p);
    return c;
}

/* Coordinate-wise: mean of the sorted values [trim, k - trim). With
 * median set, the middle value (mean of the two middles for even k).
 * AGG_LANES coordinates are sorted at once: v[j*AGG_LANES + l] holds input
 * j at coordinate l, and each compare-exchange is a branchless min/max over
 * all lanes, which the compiler turns into SIMD. */
static spStatus agg_Coordinatewise(size_t n, int k, const float *const *xs, int trim, int median,
                                   float *out)
{
    int nc = network_Size(k);
    float *v = aligned_alloc(64, (size_t)k * AGG_LANES * sizeof *v);
    int *lo = malloc((size_t)(nc ? nc : 1) * sizeof *lo);
    int *hi = malloc((size_t)(nc ? nc : 1) * sizeof *hi);
    if (!v || !lo || !hi) {
        free(v);
        free(lo);
        free(hi);
        return sp_Error(SP_ERR_NOMEM, "aggregate: out of memory");
    }
    network_Build(k, lo, hi);
    const float inv = 1.0f / (float)(k - 2 * trim);
    for (size_t off = 0; off < n; off += AGG_LANES) {
        size_t len = n - off < AGG_LANES ? n - off : AGG_LANES;
        for (int j = 0; j < k; j++) {
            float *row = v + (size_t)j * AGG_LANES;
            const float *x = xs[j] + off;
            lanes_Load(row, x, len);
        }
        for (int c = 0; c < nc; c++) {
            float *a = v + (size_t)lo[c] * AGG_LANES, *b = v + (size_t)hi[c] * AGG_LANES;
            lanes_MinMax(a, b);
        }
        float *o = out + off;
        if (median) {
            const float *m1 = v + (size_t)(k / 2) * AGG_LANES;
            const float *m0 = v + (size_t)((k - 1) / 2) * AGG_LANES;
            for (size_t l = 0; l < len; l++)
                o[l] = (k & 1) ? m1[l] : 0.5f * (m0[l] + m1[l]);
        } else {
            float acc[AGG_LANES] = {0};
            for (int j = trim; j < k - trim; j++) {
                const float *row = v + (size_t)j * AGG_LANES;
                for (int l = 0; l < AGG_LANES; l++)
                    acc[l] += row[l];
            }
            for (size_t l = 0; l < len; l++)
                o[l] = acc[l] * inv;
        }
    }
    free(v);
    free(lo);
    free(hi);
    return SP_OK;
}

/* d[i*k+j] = squared L2 distance between inputs i and j, computed block by
 * block so each block of all K inputs is read from memory once. */
static void pairwise_Dist2(size_t n, int k, const float *const *xs, double *d)
{
    memset(d, 0, (size_t)k * k * sizeof *d);
    for (size_t off = 0; off < n; off += AGG_BLOCK) {
        size_t len = n - off < AGG_BLOCK ? n - off : AGG_BLOCK;
        for (int i = 0; i < k; i++)
            for (int j = i + 1; j < k; j++)
                d[i * k + j] += tensor_Dist2(len, xs[i] + off, xs[j] + off);
    }
    for (int i = 0; i < k; i++)
        for (int j = i + 1; j < k; j++) {
            double x = isnan(d[i * k + j]) ? INFINITY : d[i * k + j];
            d[i * k + j] = d[j * k + i] = x;
        }
}

static void sort_SmallD(double *v, int k)
{
    for (int i = 1; i < k; i++) {
        double t = v[i];
        int j = i - 1;
        while (j >= 0 && v[j] > t) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = t;
    }
}

/* score[i] = sum of the k-f-2 smallest distances from i to the others. */
static void krum_Scores(int k, int f, const double *d, double *score, double *tmp)
{
    for (int i = 0; i < k; i++) {
        int c = 0;
        for (int j = 0; j < k; j++)
            if (j != i)
                tmp[c++] = d[i * k + j];
        sort_SmallD(tmp, c);
        double s = 0;
        for (int j = 0; j < k - f - 2; j++)
            s += tmp[j];
        score[i] = s;
    }
}

/* Keeps the m best-scored inputs (ties to the lower index) and averages them. */
static spStatus agg_Krum(size_t n, int k, const float *const *xs, int f, int m, float *out,
                         int *selected)
{
    double *d = malloc((size_t)k * k * sizeof *d);
    double *score = malloc((size_t)k * sizeof *score);
    double *tmp = malloc((size_t)k * sizeof *tmp);
    int *order = malloc((size_t)k * sizeof *order);
    const float **chosen = malloc((size_t)m * sizeof *chosen);
    spStatus s = SP_OK;
    if (!d || !score || !tmp || !order || !chosen) {
        s = sp_Error(SP_ERR_NOMEM, "aggregate: out of memory");
        goto done;
    }
    pairwise_Dist2(n, k, xs, d);
    krum_Scores(k, f, d, score, tmp);
    /* Stable insertion sort of indices by score. */
    for (int i = 0; i < k; i++) {
        int j = i - 1;
        while (j >= 0 && score[order[j]] > score[i]) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = i;
    }
    for (int i = 0; i < m; i++)
        chosen[i] = xs[order[i]];
    if (selected) {
        memset(selected, 0, (size_t)k * sizeof *selected);
        for (int i = 0; i < m; i++)
            selected[order[i]] = 1;
    }
    if (m == 1) {
        if (n)
            memmove(out, chosen[0], n * sizeof *out);
    } else
        agg_MeanOf(n, m, chosen, out);
done:
    free(d);
    free(score);
    free(tmp);
    free(order);
    free(chosen);
    return s;
}

static spStatus agg_Check(const agg_config *c, size_t n, int k, const float *const *xs,
                          const float *out)
{
    if (!c || !xs || (n && !out))
        return sp_Error(SP_ERR_INVALID, "aggregate: NULL config, inputs or output");
    if (k < 1 || k > AGG_MAX_INPUTS)
        return sp_Error(SP_ERR_INVALID, "aggregate: %d inputs, need 1..%d", k, AGG_MAX_INPUTS);
    for (int j = 0; j < k; j++)
        if (!xs[j] && n)
            return sp_Error(SP_ERR_INVALID, "aggregate: input %d is NULL", j);
    switch (c->kind) {
    case AGG_MEAN:
    case AGG_MEDIAN:
        return SP_OK;
    case AGG_TRIMMED_MEAN:
        if (c->trim < 0 || 2 * (long)c->trim >= k)
            return sp_Error(SP_ERR_INVALID,
                            "trimmed-mean: trim %d must be >= 0 and leave a value (2*trim < K=%d)",
                            c->trim, k);
        return SP_OK;
    case AGG_KRUM:
    case AGG_MULTI_KRUM:
        if (c->f < 0)
            return sp_Error(SP_ERR_INVALID, "%s: f must be >= 0, got %d", agg_KindName(c->kind),
                            c->f);
        if ((long)k < (long)c->f + 3)
            return sp_Error(SP_ERR_INVALID, "%s: needs K >= f+3 inputs, got K=%d with f=%d",
                            agg_KindName(c->kind), k, c->f);
        if (c->kind == AGG_MULTI_KRUM && (c->m < 0 || c->m > k))
            return sp_Error(SP_ERR_INVALID, "multi-krum: m=%d must be in 0..K=%d (0 = K-f)", c->m,
                            k);
        return SP_OK;
    }
    return sp_Error(SP_ERR_INVALID, "aggregate: unknown rule %d", (int)c->kind);
}

spStatus agg_Apply(const agg_config *c, size_t n, int k, const float *const *xs, float *out,
                   int *selected)
{
    spStatus s = agg_Check(c, n, k, xs, out);
    if (s != SP_OK)
        return s;
    if (c->kind == AGG_KRUM || c->kind == AGG_MULTI_KRUM) {
        int m = c->kind == AGG_KRUM ? 1 : (c->m ? c->m : k - c->f);
        return agg_Krum(n, k, xs, c->f, m, out, selected);
    }
    /* The coordinate-wise rules use every input. */
    if (selected)
        for (int j = 0; j < k; j++)
            selected[j] = 1;
    if (n == 0)
        return SP_OK;
    if (c->kind == AGG_MEDIAN)
        return agg_Coordinatewise(n, k, xs, 0, 1, out);
    if (c->kind == AGG_TRIMMED_MEAN && c->trim > 0)
        return agg_Coordinatewise(n, k, xs, c->trim, 0, out);
    /* The mean, and a trimmed mean that trims nothing. */
    agg_MeanOf(n, k, xs, out);
    return SP_OK;
}
