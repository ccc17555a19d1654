/* csr.c - touched columns of a sparse batch, and its checks. */
#include "core/csr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int u32_Cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

void csr_TouchedFree(csr_touched *t)
{
    free(t->cols);
    free(t->local);
    memset(t, 0, sizeof *t);
}

/* Position of c in the sorted cols[0..n-1] (c is known to be there). */
static uint32_t find_Col(const uint32_t *cols, size_t n, uint32_t c)
{
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (cols[mid] <= c)
            lo = mid;
        else
            hi = mid;
    }
    return (uint32_t)lo;
}

spStatus csr_Touch(const csr_rows *x, uint32_t last, csr_touched *t)
{
    csr_TouchedFree(t);
    size_t first = x->n ? x->ptr[0] : 0, nnz = x->n ? x->ptr[x->n] - first : 0;
    t->cols = malloc(sizeof *t->cols * (nnz + 1));
    t->local = malloc(sizeof *t->local * (nnz ? nnz : 1));
    if (!t->cols || !t->local) {
        csr_TouchedFree(t);
        return sp_Error(SP_ERR_NOMEM, "out of memory for the columns of %zu entries", nnz);
    }
    if (nnz)
        memcpy(t->cols, x->col + first, sizeof *t->cols * nnz);
    qsort(t->cols, nnz, sizeof *t->cols, u32_Cmp);
    size_t k = 0;
    for (size_t i = 0; i < nnz; i++)
        if (k == 0 || t->cols[i] != t->cols[k - 1])
            t->cols[k++] = t->cols[i];
    for (size_t i = 0; i < nnz; i++)
        t->local[i] = find_Col(t->cols, k, x->col[first + i]);
    t->cols[k++] = last;
    t->n_cols = k;
    return SP_OK;
}

spStatus csr_Check(const csr_rows *x, size_t dim)
{
    for (size_t i = 0; i < x->n; i++) {
        if (x->ptr[i + 1] < x->ptr[i])
            return sp_Error(SP_ERR_INVALID, "sparse row %zu: offsets decrease", i);
        for (size_t k = x->ptr[i]; k < x->ptr[i + 1]; k++) {
            if (x->col[k] >= dim)
                return sp_Error(SP_ERR_INVALID,
                                "sparse row %zu: column %u is outside the dimension %zu", i,
                                x->col[k], dim);
            if (k > x->ptr[i] && x->col[k] <= x->col[k - 1])
                return sp_Error(SP_ERR_INVALID,
                                "sparse row %zu: columns %u then %u (they must increase)", i,
                                x->col[k - 1], x->col[k]);
            if (!isfinite(x->val[k]))
                return sp_Error(SP_ERR_INVALID, "sparse row %zu: column %u is not finite", i,
                                x->col[k]);
        }
    }
    return SP_OK;
}
