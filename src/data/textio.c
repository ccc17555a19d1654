/* textio.c - line reading, label mapping and buffers for the loaders. */
#include "data/textio.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXTIO_CHUNK ((size_t)1 << 18)

spStatus textio_Open(textio_reader *r, const char *path)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    errno = 0;
    r->f = gzopen(path, "rb");
    if (!r->f)
        return sp_Error(errno == ENOENT ? SP_ERR_NOT_FOUND : SP_ERR_IO, "cannot open %s: %s", path,
                        errno ? strerror(errno) : "out of memory");
    gzbuffer(r->f, 1 << 17);
    r->cap = TEXTIO_CHUNK;
    r->buf = malloc(r->cap);
    if (!r->buf) {
        gzclose(r->f);
        r->f = NULL;
        return sp_Error(SP_ERR_NOMEM, "%s: cannot allocate a line buffer", path);
    }
    return SP_OK;
}

spStatus textio_GzEnd(gzFile f, const char *path, const char *what)
{
    int errnum;
    const char *msg = gzerror(f, &errnum);
    if (errnum == Z_BUF_ERROR)
        return sp_Error(SP_ERR_FORMAT, "%s: truncated: the compressed data ends %s (%s)", path,
                        what, msg);
    if (errnum != Z_OK)
        return sp_Error(SP_ERR_FORMAT, "%s: read error %s: %s", path, what, msg);
    return SP_OK;
}

void textio_Close(textio_reader *r)
{
    if (r->f)
        gzclose(r->f);
    free(r->buf);
    memset(r, 0, sizeof *r);
}

/* Reads more bytes after r->end, compacting or growing the buffer first. */
static spStatus textio_Fill(textio_reader *r)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    if (r->cap - r->end < TEXTIO_CHUNK / 2) {
        if (r->cap >= TEXTIO_MAX_LINE)
            return sp_Error(SP_ERR_FORMAT, "%s:%ld: line longer than %zu bytes (binary file?)",
                            r->path, r->line + 1, TEXTIO_MAX_LINE);
        char *nb = realloc(r->buf, r->cap * 2);
        if (!nb)
            return sp_Error(SP_ERR_NOMEM, "%s: cannot grow the line buffer", r->path);
        r->buf = nb;
        r->cap *= 2;
    }
    /* Keep one byte for the terminating NUL of a last line without '\n'. */
    size_t room = r->cap - r->end - 1;
    if (room > INT_MAX)
        room = INT_MAX;
    int got = gzread(r->f, r->buf + r->end, (unsigned)room);
    if (got < 0) {
        int errnum;
        const char *msg = gzerror(r->f, &errnum);
        return sp_Error(SP_ERR_FORMAT, "%s:%ld: read error: %s", r->path, r->line + 1, msg);
    }
    if (got == 0) {
        char where[48];
        snprintf(where, sizeof where, "after line %ld", r->line);
        spStatus st = textio_GzEnd(r->f, r->path, where);
        if (st != SP_OK)
            return st;
        r->eof = 1;
    }
    r->end += (size_t)got;
    return SP_OK;
}

spStatus textio_Next(textio_reader *r, char **line, size_t *len)
{
    size_t scanned = 0;
    for (;;) {
        char *s = r->buf + r->start;
        size_t avail = r->end - r->start;
        char *nl = memchr(s + scanned, '\n', avail - scanned);
        if (nl || (r->eof && avail > 0)) {
            size_t n = nl ? (size_t)(nl - s) : avail;
            r->start += nl ? n + 1 : n;
            if (n > 0 && s[n - 1] == '\r')
                n--;
            s[n] = '\0';
            r->line++;
            if (memchr(s, '\0', n))
                return sp_Error(SP_ERR_FORMAT, "%s:%ld: NUL byte in a text line (binary file?)",
                                r->path, r->line);
            *line = s;
            *len = n;
            return SP_OK;
        }
        if (r->eof) {
            *line = NULL;
            *len = 0;
            return SP_OK;
        }
        scanned = avail;
        spStatus st = textio_Fill(r);
        if (st != SP_OK)
            return st;
    }
}

spStatus textio_NextData(textio_reader *r, char **p)
{
    for (;;) {
        char *line;
        size_t len;
        spStatus s = textio_Next(r, &line, &len);
        if (s != SP_OK || !line) {
            *p = NULL;
            return s;
        }
        while (textio_IsBlank(*line))
            line++;
        if (*line) {
            *p = line;
            return SP_OK;
        }
    }
}

spStatus textio_Grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return SP_OK;
    size_t nc = *cap ? *cap : 1024;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / size)
            return sp_Error(SP_ERR_NOMEM, "dataset too large to hold in memory");
        nc *= 2;
    }
    void *np = realloc(*p, nc * size);
    if (!np)
        return sp_Error(SP_ERR_NOMEM, "cannot allocate %zu bytes", nc * size);
    *p = np;
    *cap = nc;
    return SP_OK;
}

spStatus textio_AddLabel(textio_labels *l, const char *path, long line, double value)
{
    if (!isfinite(value) || value != floor(value) || value < -1 || value > TEXTIO_MAX_LABEL)
        return sp_Error(SP_ERR_FORMAT,
                        "%s:%ld: label %g is not an integer in -1..%d (classes are 0..K-1, "
                        "or -1/+1)",
                        path, line, value, TEXTIO_MAX_LABEL);
    int32_t v = (int32_t)value;
    spStatus s = textio_Grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v);
    if (s != SP_OK)
        return s;
    l->v[l->n++] = v;
    if (v == 0 && !l->first_zero_line)
        l->first_zero_line = line;
    if (v == -1 && !l->first_neg_line)
        l->first_neg_line = line;
    if (v != -1 && v != 1 && !l->first_other_line) {
        l->first_other_line = line;
        l->first_other = v;
    }
    if (v > l->max)
        l->max = v;
    return SP_OK;
}

spStatus textio_FinishLabels(textio_labels *l, const char *path, dataset *d)
{
    if (l->first_neg_line && l->first_other_line) {
        long bad = l->first_neg_line > l->first_other_line ? l->first_neg_line : l->first_other_line;
        return sp_Error(SP_ERR_FORMAT,
                        "%s:%ld: labels mix -1 (first at line %ld) with %d (first at line %ld); "
                        "use -1/+1 or 0..K-1",
                        path, bad, l->first_neg_line, (int)l->first_other, l->first_other_line);
    }
    if (l->first_neg_line) {
        /* Binary LibSVM convention: -1 -> 0, +1 -> 1. */
        for (size_t i = 0; i < l->n; i++)
            l->v[i] = l->v[i] == 1;
        d->classes = 2;
    } else if (!l->first_zero_line && l->max > 1) {
        /* 1..K, the other common convention for multi-class files. */
        for (size_t i = 0; i < l->n; i++)
            l->v[i] -= 1;
        d->classes = l->max;
    } else {
        d->classes = l->max + 1;
    }
    d->y = l->v;
    l->v = NULL;
    l->n = l->cap = 0;
    return SP_OK;
}

/* Dense datasets beyond these are refused up front: a tiny hostile file
 * (a LibSVM index of 67108864, an IDX header claiming 2^31 images) must not
 * make us allocate gigabytes before reading a single value. */
#define TEXTIO_MAX_DIM ((size_t)1 << 24)
#define TEXTIO_MAX_BYTES ((size_t)4 << 30)

spStatus textio_Deliver(spStatus s, dataset *d, dataset *out)
{
    if (s != SP_OK) {
        dataset_Free(d);
        return s;
    }
    d->c = 1;
    d->h = 1;
    d->w = (int)d->dim;
    *out = *d;
    return SP_OK;
}

spStatus textio_AllocRows(size_t n, size_t dim, float **out)
{
    if (dim > TEXTIO_MAX_DIM)
        return sp_Error(SP_ERR_TOO_LARGE, "%zu features per row exceed the limit of %zu", dim,
                        TEXTIO_MAX_DIM);
    if (dim && n > TEXTIO_MAX_BYTES / sizeof(float) / dim)
        return sp_Error(SP_ERR_TOO_LARGE, "%zu rows of %zu features exceed the %zu GiB limit", n,
                        dim, TEXTIO_MAX_BYTES >> 30);
    size_t bytes = n * dim * sizeof(float);
    bytes = (bytes + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p)
        return sp_Error(SP_ERR_NOMEM, "cannot allocate %zu rows of %zu features (%zu bytes)", n,
                        dim, bytes);
    *out = p;
    return SP_OK;
}
