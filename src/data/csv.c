/* csv.c - comma-separated numbers, one sample per line.
 *
 * The first non-blank line is a header if any of its fields is not a number.
 * Every data row must have the same number of columns as the first one. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/textio.h"

typedef struct {
    float *x;
    size_t x_cap, rows;
    size_t cols;        /* columns per row, fixed by the first data row */
    size_t label_col;
    textio_labels labels;
    double *fields;     /* one parsed line */
    size_t fields_cap;
} csv_rows;

/* Splits and parses one line into r->fields. Returns SP_OK with *nf fields,
 * or SP_ERR_FORMAT naming the bad field (the message is only used when the
 * line is a data line). */
static spStatus csv_Fields(csv_rows *r, const char *path, long line, char *p, size_t *nf)
{
    size_t n = 0;
    for (;;) {
        while (textio_IsBlank(*p))
            p++;
        char *end;
        double v = strtod(p, &end);
        char *q = end;
        while (textio_IsBlank(*q))
            q++;
        if (end == p || (*q && *q != ','))
            return sp_Error(SP_ERR_FORMAT, "%s:%ld: field %zu is not a number: \"%.20s\"", path,
                            line, n + 1, p);
        if (!isfinite(v) || fabs(v) > 3.4e38)
            return sp_Error(SP_ERR_FORMAT, "%s:%ld: field %zu is not finite", path, line, n + 1);
        spStatus s = textio_Grow((void **)&r->fields, &r->fields_cap, n + 1, sizeof *r->fields);
        if (s != SP_OK)
            return s;
        r->fields[n++] = v;
        if (!*q)
            break;
        p = q + 1;
    }
    *nf = n;
    return SP_OK;
}

static spStatus csv_Row(csv_rows *r, const char *path, long line, size_t nf)
{
    if (nf != r->cols)
        return sp_Error(SP_ERR_FORMAT, "%s:%ld: %zu columns, expected %zu like the first row", path,
                        line, nf, r->cols);
    spStatus s = textio_AddLabel(&r->labels, path, line, r->fields[r->label_col]);
    if (s != SP_OK)
        return s;
    size_t dim = r->cols - 1;
    s = textio_Grow((void **)&r->x, &r->x_cap, (r->rows + 1) * dim, sizeof *r->x);
    if (s != SP_OK)
        return s;
    float *row = r->x + r->rows * dim;
    for (size_t j = 0, k = 0; j < nf; j++)
        if (j != r->label_col)
            row[k++] = (float)r->fields[j];
    r->rows++;
    return SP_OK;
}

static spStatus csv_Read(csv_rows *r, const char *path, int label_col)
{
    textio_reader rd;
    spStatus s = textio_Open(&rd, path);
    if (s != SP_OK)
        return s;
    int seen_first = 0;
    for (;;) {
        char *p;
        size_t nf = 0;
        s = textio_NextData(&rd, &p);
        if (s != SP_OK || !p)
            break;
        s = csv_Fields(r, path, rd.line, p, &nf);
        if (!seen_first) {
            seen_first = 1;
            if (s == SP_ERR_FORMAT)
                continue; /* header line */
            if (s != SP_OK)
                break;
        }
        if (s != SP_OK)
            break;
        if (r->cols == 0) {
            if (nf < 2) {
                s = sp_Error(SP_ERR_FORMAT, "%s:%ld: need a label and at least one feature, "
                                            "found %zu column", path, rd.line, nf);
                break;
            }
            if (label_col < -1 || label_col >= (int)nf) {
                s = sp_Error(SP_ERR_INVALID, "%s:%ld: label column %d out of range for %zu columns",
                             path, rd.line, label_col, nf);
                break;
            }
            r->cols = nf;
            r->label_col = label_col < 0 ? nf - 1 : (size_t)label_col;
        }
        s = csv_Row(r, path, rd.line, nf);
        if (s != SP_OK)
            break;
    }
    textio_Close(&rd);
    return s;
}

spStatus dataset_LoadCsv(const char *path, int label_col, dataset *out)
{
    csv_rows r = {0};
    dataset d = {0};
    spStatus s = csv_Read(&r, path, label_col);
    if (s == SP_OK && r.rows == 0)
        s = sp_Error(SP_ERR_FORMAT, "%s: no data rows", path);
    if (s == SP_OK) {
        d.n = r.rows;
        d.dim = r.cols - 1;
        /* Move the rows into an aligned block like every other loader's. */
        s = textio_AllocRows(d.n, d.dim, &d.x);
        if (s == SP_OK)
            memcpy(d.x, r.x, d.n * d.dim * sizeof *d.x);
    }
    if (s == SP_OK)
        s = textio_FinishLabels(&r.labels, path, &d);
    free(r.x);
    free(r.fields);
    free(r.labels.v);
    return textio_Deliver(s, &d, out);
}
