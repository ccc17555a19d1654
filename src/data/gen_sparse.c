/* gen_sparse.c - `spirt datagen sparse`: LibSVM rows from a sparse linear
 * teacher with label noise (data/datagen.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "core/rng.h"
#include "data/datagen.h"

/* Rng streams, kept apart from every other use of the seed. */
#define GEN_TEACHER_STREAM ((uint64_t)0x4754 << 48) /* "GT" */
#define GEN_ROWS_STREAM ((uint64_t)0x4752 << 48)    /* "GR" */

void datagen_SparseDefaults(datagen_sparse *g)
{
    memset(g, 0, sizeof *g);
    g->rows = 60000;
    g->dim = (size_t)1 << 20;
    g->nnz = 24;
    g->classes = 2;
    g->noise = 0.05;
    g->skew = 4.0;
    g->informative = 4096;
    g->labels = DATAGEN_LABELS_ZERO;
    g->seed = 1;
}

spStatus datagen_SparseCheck(const datagen_sparse *g)
{
    if (g->rows < 1 || g->rows > ((size_t)1 << 31))
        return sp_Error(SP_ERR_INVALID, "rows must be in 1..2^31, got %zu", g->rows);
    if (g->dim < 1 || g->dim > DATAGEN_MAX_DIM)
        return sp_Error(SP_ERR_INVALID, "dim must be in 1..%zu, got %zu", DATAGEN_MAX_DIM,
                        g->dim);
    if (g->nnz < 1 || (size_t)g->nnz > g->dim || g->nnz > 100000)
        return sp_Error(SP_ERR_INVALID, "nnz must be in 1..min(dim, 100000), got %d", g->nnz);
    if (g->classes < 2 || g->classes > 65535)
        return sp_Error(SP_ERR_INVALID, "classes must be in 2..65535, got %d", g->classes);
    if (g->labels == DATAGEN_LABELS_PM && g->classes != 2)
        return sp_Error(SP_ERR_INVALID, "-1/+1 labels need 2 classes, not %d", g->classes);
    if (!(g->noise >= 0 && g->noise < 1))
        return sp_Error(SP_ERR_INVALID, "noise must be in [0, 1), got %g", g->noise);
    if (g->informative < 1 || g->informative > g->dim)
        return sp_Error(SP_ERR_INVALID, "informative must be in 1..dim (%zu), got %zu", g->dim,
                        g->informative);
    if (!(g->skew >= 1 && g->skew <= 64))
        return sp_Error(SP_ERR_INVALID, "skew must be in 1..64, got %g", g->skew);
    return SP_OK;
}

static int u32_Cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* One row's features as popularity ranks, drawn with the skew: sorted,
 * distinct. Returns how many (repeats dropped). */
static int gen_Ranks(const datagen_sparse *g, rng *r, uint32_t *f)
{
    int lo = (g->nnz + 1) / 2, span = g->nnz - lo;
    int k = lo + (int)rng_Below(r, (uint64_t)(2 * span + 1));
    for (int i = 0; i < k; i++) {
        double u = rng_Uniform(r);
        uint64_t rank = (uint64_t)((double)g->dim * pow(u, g->skew));
        f[i] = (uint32_t)(rank < g->dim ? rank : g->dim - 1);
    }
    qsort(f, (size_t)k, sizeof *f, u32_Cmp);
    int n = 0;
    for (int i = 0; i < k; i++)
        if (n == 0 || f[i] != f[n - 1])
            f[n++] = f[i];
    return n;
}

/* The teacher's class for a row of ranks: only the `informative` most
 * popular features carry weight (ties, as in a row without any, go to the
 * lowest class: still a fixed function of the row). */
static int gen_Argmax(const datagen_sparse *g, const float *w, const uint32_t *f, int n,
                      double *score)
{
    for (int c = 0; c < g->classes; c++)
        score[c] = 0;
    for (int i = 0; i < n && f[i] < g->informative; i++)
        for (int c = 0; c < g->classes; c++)
            score[c] += w[(size_t)f[i] * (size_t)g->classes + (size_t)c];
    int best = 0;
    for (int c = 1; c < g->classes; c++)
        if (score[c] > score[best])
            best = c;
    return best;
}

static int gen_Label(const datagen_sparse *g, int c, char *out, size_t cap)
{
    switch (g->labels) {
    case DATAGEN_LABELS_PM: return snprintf(out, cap, "%s", c ? "+1" : "-1");
    case DATAGEN_LABELS_ONE: return snprintf(out, cap, "%d", c + 1);
    case DATAGEN_LABELS_ZERO: break;
    }
    return snprintf(out, cap, "%d", c);
}

static int ends_With(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

static spStatus gen_Write(const datagen_sparse *g, gzFile out, const char *path,
                          const float *w, datagen_result *res)
{
    rng r;
    rng_Seed(&r, g->seed, GEN_ROWS_STREAM);
    uint64_t mult = 2654435761u % g->dim;
    if (mult == 0)
        mult = 1;
    while (gcd(mult, g->dim) != 1)
        mult++;
    uint32_t *f = malloc(sizeof *f * (size_t)(2 * g->nnz + 1));
    double *score = malloc(sizeof *score * (size_t)g->classes);
    char *line = malloc((size_t)(2 * g->nnz + 1) * 24 + 32);
    spStatus st = SP_OK;
    size_t agree = 0;
    if (!f || !score || !line)
        st = sp_Error(SP_ERR_NOMEM, "datagen: out of memory");
    for (size_t i = 0; st == SP_OK && i < g->rows; i++) {
        int n = gen_Ranks(g, &r, f);
        int clean = gen_Argmax(g, w, f, n, score), label = clean;
        /* ranks scattered over the index space by a fixed bijection, as
         * hashing does, and sorted as LibSVM rows are */
        for (int k = 0; k < n; k++)
            f[k] = (uint32_t)(((uint64_t)f[k] * mult) % g->dim);
        qsort(f, (size_t)n, sizeof *f, u32_Cmp);
        if (rng_Uniform(&r) < g->noise)
            label = (int)rng_Below(&r, (uint64_t)g->classes);
        agree += label == clean;
        int len = gen_Label(g, label, line, 16);
        for (int k = 0; k < n; k++)
            len += sprintf(line + len, " %u:1", f[k] + 1);
        line[len++] = '\n';
        res->nnz += (size_t)n;
        if (gzwrite(out, line, (unsigned)len) != len) {
            int e;
            st = sp_Error(SP_ERR_IO, "%s: write failed at row %zu: %s", path, i + 1,
                          gzerror(out, &e));
        }
    }
    res->teacher_accuracy = (double)agree / (double)g->rows;
    free(f);
    free(score);
    free(line);
    return st;
}

spStatus datagen_Sparse(const datagen_sparse *g, const char *path, datagen_result *res)
{
    spStatus st = datagen_SparseCheck(g);
    if (st)
        return st;
    memset(res, 0, sizeof *res);
    res->bayes_accuracy = 1.0 - g->noise + g->noise / g->classes;
    size_t nw = g->informative * (size_t)g->classes;
    float *w = malloc(sizeof *w * nw);
    if (!w)
        return sp_Error(SP_ERR_NOMEM, "datagen: out of memory for a teacher of %zu weights", nw);
    rng r;
    rng_Seed(&r, g->seed, GEN_TEACHER_STREAM);
    for (size_t i = 0; i < nw; i++)
        w[i] = rng_Normal(&r);
    /* "T": plain output through the same calls when not compressing. */
    errno = 0;
    gzFile out = gzopen(path, ends_With(path, ".gz") ? "wb6" : "wbT");
    if (!out) {
        free(w);
        return sp_Error(SP_ERR_IO, "cannot write %s: %s", path,
                        errno ? strerror(errno) : "out of memory");
    }
    st = gen_Write(g, out, path, w, res);
    int rc = gzclose(out);
    if (st == SP_OK && rc != Z_OK)
        st = sp_Error(SP_ERR_IO, "%s: closing failed (disk full?)", path);
    free(w);
    return st;
}
