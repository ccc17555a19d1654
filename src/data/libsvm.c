/* libsvm.c - LibSVM sparse text: "label idx:val idx:val ..." (1-based).
 *
 * Rows are collected straight into CSR (data/dataset.h) and stay that way:
 * a 2^20-feature file costs its non-zeros, not rows x dimension. Each row's
 * entries are sorted by index (a repeated index is an error). Blank lines
 * and lines starting with '#' are skipped; "qid:" tokens are ignored. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/textio.h"

/* Feature indices above this are treated as corrupt input. */
#define LIBSVM_MAX_INDEX (1u << 26)

typedef struct {
    size_t *row_end;     /* entries of row i end at row_end[i + 1]; row_end[0] = 0 */
    uint32_t *idx;       /* 0-based */
    float *val;
    size_t rows, rows_cap, nnz, idx_cap, val_cap;
    uint32_t max_index;  /* largest 1-based index seen */
    textio_labels labels;
} libsvm_rows;

static void libsvm_Free(libsvm_rows *r)
{
    free(r->row_end);
    free(r->idx);
    free(r->val);
    free(r->labels.v);
}

static spStatus libsvm_Entry(libsvm_rows *r, const char *path, long line, char **pp, size_t dim)
{
    char *p = *pp, *end;
    if (strncmp(p, "qid:", 4) == 0) {
        while (*p && !textio_IsBlank(*p))
            p++;
        *pp = p;
        return SP_OK;
    }
    if (*p < '0' || *p > '9')
        return sp_Error(SP_ERR_FORMAT, "%s:%ld: expected index:value, got \"%.20s\"", path, line, p);
    errno = 0;
    unsigned long ix = strtoul(p, &end, 10);
    if (*end != ':')
        return sp_Error(SP_ERR_FORMAT, "%s:%ld: expected ':' after feature index, got \"%.20s\"",
                        path, line, p);
    if (errno || ix == 0 || ix > LIBSVM_MAX_INDEX)
        return sp_Error(SP_ERR_FORMAT, "%s:%ld: feature index %.20s out of range 1..%u", path, line,
                        p, LIBSVM_MAX_INDEX);
    if (dim && ix > dim)
        return sp_Error(SP_ERR_FORMAT, "%s:%ld: feature index %lu exceeds the dimension %zu", path,
                        line, ix, dim);
    p = end + 1;
    double v = strtod(p, &end);
    if (end == p || (*end && !textio_IsBlank(*end)))
        return sp_Error(SP_ERR_FORMAT, "%s:%ld: bad value for feature %lu: \"%.20s\"", path, line,
                        ix, p);
    if (!isfinite(v) || fabs(v) > 3.4e38)
        return sp_Error(SP_ERR_FORMAT, "%s:%ld: non-finite value for feature %lu", path, line, ix);
    spStatus s = textio_Grow((void **)&r->idx, &r->idx_cap, r->nnz + 1, sizeof *r->idx);
    if (s == SP_OK)
        s = textio_Grow((void **)&r->val, &r->val_cap, r->nnz + 1, sizeof *r->val);
    if (s != SP_OK)
        return s;
    r->idx[r->nnz] = (uint32_t)(ix - 1);
    r->val[r->nnz] = (float)v;
    r->nnz++;
    if (ix > r->max_index)
        r->max_index = (uint32_t)ix;
    *pp = end;
    return SP_OK;
}

/* Sorts row entries idx/val[first..nnz) by index (insertion sort: rows are
 * short and usually sorted already) and rejects a repeated index. */
static spStatus libsvm_SortRow(libsvm_rows *r, const char *path, long line, size_t first)
{
    for (size_t k = first + 1; k < r->nnz; k++) {
        uint32_t ix = r->idx[k];
        float v = r->val[k];
        size_t j = k;
        for (; j > first && r->idx[j - 1] > ix; j--) {
            r->idx[j] = r->idx[j - 1];
            r->val[j] = r->val[j - 1];
        }
        r->idx[j] = ix;
        r->val[j] = v;
    }
    for (size_t k = first + 1; k < r->nnz; k++)
        if (r->idx[k] == r->idx[k - 1])
            return sp_Error(SP_ERR_FORMAT, "%s:%ld: feature index %u appears twice", path, line,
                            r->idx[k] + 1);
    return SP_OK;
}

static spStatus libsvm_Line(libsvm_rows *r, const char *path, long line, char *p, size_t dim)
{
    size_t first = r->nnz;
    char *end;
    double label = strtod(p, &end);
    if (end == p || (*end && !textio_IsBlank(*end)))
        return sp_Error(SP_ERR_FORMAT, "%s:%ld: bad label \"%.20s\"", path, line, p);
    spStatus s = textio_AddLabel(&r->labels, path, line, label);
    if (s != SP_OK)
        return s;
    for (p = end;;) {
        while (textio_IsBlank(*p))
            p++;
        if (!*p || *p == '#')
            break;
        s = libsvm_Entry(r, path, line, &p, dim);
        if (s != SP_OK)
            return s;
    }
    if ((s = libsvm_SortRow(r, path, line, first)) != SP_OK)
        return s;
    /* row_end[0] is 0: the array becomes the dataset's CSR offsets. */
    s = textio_Grow((void **)&r->row_end, &r->rows_cap, r->rows + 2, sizeof *r->row_end);
    if (s != SP_OK)
        return s;
    r->row_end[0] = 0;
    r->row_end[++r->rows] = r->nnz;
    return SP_OK;
}

static spStatus libsvm_Read(libsvm_rows *r, const char *path, size_t dim)
{
    textio_reader rd;
    spStatus s = textio_Open(&rd, path);
    if (s != SP_OK)
        return s;
    for (;;) {
        char *p;
        s = textio_NextData(&rd, &p);
        if (s != SP_OK || !p)
            break;
        if (*p == '#')
            continue;
        s = libsvm_Line(r, path, rd.line, p, dim);
        if (s != SP_OK)
            break;
    }
    textio_Close(&rd);
    return s;
}

spStatus dataset_LoadLibsvm(const char *path, size_t dim, dataset *out)
{
    libsvm_rows r = {0};
    dataset d = {0};
    spStatus s = libsvm_Read(&r, path, dim);
    if (s == SP_OK && r.rows == 0)
        s = sp_Error(SP_ERR_FORMAT, "%s: no data rows", path);
    if (s == SP_OK) {
        d.n = r.rows;
        d.dim = dim ? dim : r.max_index;
        if (d.dim == 0)
            s = sp_Error(SP_ERR_FORMAT, "%s: no features in any row (dimension 0)", path);
    }
    if (s == SP_OK) {
        /* The arrays become the dataset's: nothing is copied or expanded. */
        d.ptr = r.row_end;
        d.col = r.idx;
        d.val = r.val;
        r.row_end = NULL;
        r.idx = NULL;
        r.val = NULL;
        s = textio_FinishLabels(&r.labels, path, &d);
    }
    libsvm_Free(&r);
    return textio_Deliver(s, &d, out);
}
