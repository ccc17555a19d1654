/* fuzz_dataset.h - the promises every dataset loader makes (data/dataset.h),
 * checked on whatever a loader accepted. */
#ifndef SPIRT_FUZZ_DATASET_H
#define SPIRT_FUZZ_DATASET_H

#include <math.h>

#include "data/dataset.h"
#include "fuzz_util.h"

static inline void fz_CheckDataset(const dataset *d)
{
    FZ_CHECK(d->n > 0 && d->dim > 0, "n %zu dim %zu", d->n, d->dim);
    FZ_CHECK(d->y && (dataset_IsSparse(d) ? d->x == NULL : d->x != NULL), "missing arrays");
    FZ_CHECK((size_t)d->c * (size_t)d->h * (size_t)d->w == d->dim, "shape %dx%dx%d vs dim %zu",
             d->c, d->h, d->w, d->dim);
    FZ_CHECK(d->classes >= 1, "classes %d", d->classes);
    for (size_t i = 0; i < d->n; i++)
        FZ_CHECK(d->y[i] >= 0 && d->y[i] < d->classes, "label %d of row %zu, classes %d",
                 (int)d->y[i], i, d->classes);
    if (dataset_IsSparse(d)) {
        csr_rows all = dataset_Rows(d, 0, d->n);
        FZ_CHECK(d->ptr[0] == 0, "first offset %zu", d->ptr[0]);
        FZ_CHECK(csr_Check(&all, d->dim) == SP_OK, "%s", sp_LastError());
        return;
    }
    for (size_t i = 0; i < d->n * d->dim; i++)
        FZ_CHECK(isfinite(d->x[i]), "non-finite feature at %zu", i);
}

#endif
