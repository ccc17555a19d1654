/* idx.c - the IDX format of MNIST / Fashion-MNIST, gzip-compressed or raw.
 *
 * Header: big-endian u32 magic (0x00000803 images, 0x00000801 labels), then
 * one big-endian u32 per dimension, then unsigned bytes. zlib's gzread reads
 * raw files transparently, so one path serves both; it is read in large
 * chunks because per-byte calls would dominate the load time. Byte offsets in
 * errors count uncompressed bytes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data/dataset.h"
#include "data/textio.h"

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
/* Larger images than this are not MNIST-like; a header claiming more is corrupt. */
#define IDX_MAX_SIDE 4096u
#define IDX_CHUNK ((size_t)1 << 20)

typedef struct {
    gzFile f;
    const char *path;
    size_t off; /* uncompressed bytes consumed */
    long long file_size; /* on disk (compressed if gzip) */
} idx_file;

static spStatus idx_Open(idx_file *x, const char *path)
{
    x->path = path;
    x->off = 0;
    errno = 0;
    x->f = gzopen(path, "rb");
    if (!x->f)
        return sp_Error(errno == ENOENT ? SP_ERR_NOT_FOUND : SP_ERR_IO, "cannot open %s: %s", path,
                        errno ? strerror(errno) : "out of memory");
    gzbuffer(x->f, 1 << 18);
    struct stat st;
    x->file_size = stat(path, &st) == 0 ? (long long)st.st_size : 0;
    return SP_OK;
}

static spStatus idx_ReadError(idx_file *x, size_t off)
{
    int errnum;
    const char *msg = gzerror(x->f, &errnum);
    /* zlib reports a gzip stream cut short as Z_BUF_ERROR. */
    if (errnum == Z_BUF_ERROR)
        return sp_Error(SP_ERR_FORMAT, "%s: truncated at byte offset %zu (%s)", x->path, off, msg);
    return sp_Error(SP_ERR_FORMAT, "%s: corrupt data at byte offset %zu: %s", x->path, off, msg);
}

/* Reads exactly len bytes; a short read is a truncated (or corrupt) file. */
static spStatus idx_Read(idx_file *x, void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        size_t want = len - done < IDX_CHUNK ? len - done : IDX_CHUNK;
        int got = gzread(x->f, (char *)buf + done, (unsigned)want);
        if (got < 0)
            return idx_ReadError(x, x->off + done);
        if (got == 0)
            return sp_Error(SP_ERR_FORMAT,
                            "%s: truncated at byte offset %zu (expected %zu more bytes)", x->path,
                            x->off + done, len - done);
        done += (size_t)got;
    }
    x->off += len;
    return SP_OK;
}

static spStatus idx_ExpectEnd(idx_file *x)
{
    unsigned char b;
    int got = gzread(x->f, &b, 1);
    if (got < 0)
        return idx_ReadError(x, x->off);
    if (got > 0)
        return sp_Error(SP_ERR_FORMAT, "%s: unexpected data after the last row at byte offset %zu",
                        x->path, x->off);
    /* Every row was there, but a gzip stream may still lack its end. */
    char where[64];
    snprintf(where, sizeof where, "at byte offset %zu", x->off);
    return textio_GzEnd(x->f, x->path, where);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads magic + ndim dimensions into dims. */
static spStatus idx_Header(idx_file *x, uint32_t magic, const char *what, int ndim, uint32_t *dims)
{
    unsigned char h[16];
    /* The magic alone first, so a wrong kind of file is named as such even
     * when it is shorter than the header we expected. */
    spStatus s = idx_Read(x, h, 4);
    if (s != SP_OK)
        return s;
    uint32_t m = be32(h);
    if (m != magic)
        return sp_Error(SP_ERR_FORMAT,
                        "%s: bad magic 0x%08x at byte offset 0, expected 0x%08x (an IDX %s file)",
                        x->path, m, magic, what);
    s = idx_Read(x, h + 4, 4 * (size_t)ndim);
    if (s != SP_OK)
        return s;
    for (int i = 0; i < ndim; i++)
        dims[i] = be32(h + 4 + 4 * i);
    return SP_OK;
}

static spStatus idx_Images(idx_file *x, dataset *d)
{
    uint32_t dims[3];
    spStatus s = idx_Header(x, IDX_MAGIC_IMAGES, "image", 3, dims);
    if (s != SP_OK)
        return s;
    if (dims[0] == 0)
        return sp_Error(SP_ERR_FORMAT, "%s: header declares 0 images (byte offset 4)", x->path);
    if (dims[1] == 0 || dims[2] == 0 || dims[1] > IDX_MAX_SIDE || dims[2] > IDX_MAX_SIDE)
        return sp_Error(SP_ERR_FORMAT, "%s: implausible image size %ux%u at byte offset 8", x->path,
                        dims[1], dims[2]);
    d->n = dims[0];
    d->c = 1;
    d->h = (int)dims[1];
    d->w = (int)dims[2];
    d->dim = (size_t)dims[1] * dims[2];
    /* Deflate expands at most ~1032:1, so a header claiming more pixels than
     * the file could hold is corrupt: refuse it before allocating. */
    if ((double)d->n * (double)d->dim > 1040.0 * (double)x->file_size + 4096.0)
        return sp_Error(SP_ERR_FORMAT, "%s: header declares %zu images of %zux%d but the file "
                        "has only %lld bytes (byte offset 4)", x->path, d->n, (size_t)dims[1],
                        d->w, (long long)x->file_size);
    s = textio_AllocRows(d->n, d->dim, &d->x);
    if (s != SP_OK)
        return sp_Wrap(s, "%s", x->path);

    unsigned char *chunk = malloc(IDX_CHUNK);
    if (!chunk)
        return sp_Error(SP_ERR_NOMEM, "%s: cannot allocate a read buffer", x->path);
    float lut[256];
    for (int i = 0; i < 256; i++)
        lut[i] = (float)i / 255.0f;
    size_t total = d->n * d->dim;
    for (size_t done = 0; done < total && s == SP_OK;) {
        size_t len = total - done < IDX_CHUNK ? total - done : IDX_CHUNK;
        s = idx_Read(x, chunk, len);
        for (size_t i = 0; s == SP_OK && i < len; i++)
            d->x[done + i] = lut[chunk[i]];
        done += len;
    }
    free(chunk);
    return s != SP_OK ? s : idx_ExpectEnd(x);
}

static spStatus idx_Labels(idx_file *x, size_t n_images, dataset *d)
{
    uint32_t n;
    spStatus s = idx_Header(x, IDX_MAGIC_LABELS, "label", 1, &n);
    if (s != SP_OK)
        return s;
    if (n != n_images)
        return sp_Error(SP_ERR_FORMAT, "%s: declares %u labels but the image file has %zu images",
                        x->path, n, n_images);
    unsigned char *raw = malloc(n ? n : 1);
    d->y = malloc(sizeof *d->y * (n ? n : 1));
    if (!raw || !d->y) {
        free(raw);
        return sp_Error(SP_ERR_NOMEM, "%s: cannot allocate %u labels", x->path, n);
    }
    s = idx_Read(x, raw, n);
    if (s == SP_OK)
        s = idx_ExpectEnd(x);
    int max = 0;
    for (uint32_t i = 0; s == SP_OK && i < n; i++) {
        d->y[i] = raw[i];
        if (raw[i] > max)
            max = raw[i];
    }
    free(raw);
    /* Labels are single bytes, so they are in range by construction; the
     * class count is what the data shows. */
    d->classes = max + 1;
    return s;
}

spStatus dataset_LoadIdx(const char *images_path, const char *labels_path, dataset *out)
{
    dataset d = {0};
    idx_file fi = {0}, fl = {0};
    spStatus s = idx_Open(&fi, images_path);
    if (s == SP_OK)
        s = idx_Images(&fi, &d);
    if (fi.f)
        gzclose(fi.f);
    if (s == SP_OK)
        s = idx_Open(&fl, labels_path);
    if (s == SP_OK)
        s = idx_Labels(&fl, d.n, &d);
    if (fl.f)
        gzclose(fl.f);
    if (s != SP_OK) {
        dataset_Free(&d);
        return s;
    }
    *out = d;
    return SP_OK;
}
