/* csr.h - sparse rows in compressed sparse row (CSR) form, and the one
 * operation every sparse consumer needs: the set of columns a batch touches.
 *
 * Row i's entries are col[ptr[i]] .. col[ptr[i+1]-1] with values val[...]
 * (ptr[0] = 0 for a batch; a dataset's rows share one array). Columns are
 * 0-based and strictly increasing within a row. Loaders (data/), models
 * (ml/) and the steps all read this one view, so a sparse row is never
 * expanded to its dense width on the way. */
#ifndef SPIRT_CSR_H
#define SPIRT_CSR_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct {
    size_t n;             /* rows */
    const size_t *ptr;    /* n + 1 offsets */
    const uint32_t *col;  /* ptr[n] columns */
    const float *val;     /* ptr[n] values */
} csr_rows;

/* A batch's touched columns and the batch rewritten over them: cols holds
 * the sorted distinct columns of every entry and then `last`, a column
 * every batch touches (the bias row of the linear models), n_cols in all;
 * local holds the position in cols of each entry (ptr[n] of them), so a
 * model computes on the n_cols parameter rows alone. Owns its arrays. */
typedef struct {
    uint32_t *cols;
    size_t n_cols;
    uint32_t *local;
} csr_touched;

/* Fills t for x (t's previous arrays are freed); `last` must be above every
 * column of x. SP_ERR_NOMEM on failure. */
spStatus csr_Touch(const csr_rows *x, uint32_t last, csr_touched *t);
void csr_TouchedFree(csr_touched *t);

/* Checks a batch: offsets non-decreasing from ptr[0], columns below dim and
 * strictly increasing within each row, values finite. SP_ERR_INVALID naming
 * the row. */
spStatus csr_Check(const csr_rows *x, size_t dim);

#endif
