/* dataset.c - opening datasets by name or path, sharding, epoch shuffles. */
#include "data/dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/rng.h"
#include "data/textio.h"

#define DATASET_SYSTEM_DIR "/usr/share/datasets"
/* Rng stream tag for epoch shuffles ("SH"), kept apart from other purposes. */
#define DATASET_SHUFFLE_TAG ((uint64_t)0x5348 << 48)

void dataset_Free(dataset *d)
{
    if (!d)
        return;
    free(d->x);
    free(d->y);
    free(d->ptr);
    free(d->col);
    free(d->val);
    memset(d, 0, sizeof *d);
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Finds <dir>/<stem>-idxN-ubyte[.gz] (or the <stem>.idxN-ubyte spelling). */
static int idx_Find(const char *dir, const char *stem, int nd, char *out, size_t cap)
{
    static const char *const fmts[] = {"%s/%s-idx%d-ubyte.gz", "%s/%s-idx%d-ubyte",
                                       "%s/%s.idx%d-ubyte.gz", "%s/%s.idx%d-ubyte"};
    for (size_t i = 0; i < sizeof fmts / sizeof *fmts; i++) {
        int n = snprintf(out, cap, fmts[i], dir, stem, nd);
        if (n > 0 && (size_t)n < cap && is_file(out))
            return 1;
    }
    return 0;
}

static spStatus open_IdxSplit(const char *dir, const char *split, dataset *d)
{
    char img_stem[32], lbl_stem[32], img[4096], lbl[4096];
    snprintf(img_stem, sizeof img_stem, "%s-images", split);
    snprintf(lbl_stem, sizeof lbl_stem, "%s-labels", split);
    if (!idx_Find(dir, img_stem, 3, img, sizeof img))
        return sp_Error(SP_ERR_NOT_FOUND, "%s: no %s-idx3-ubyte[.gz] in it", dir, img_stem);
    if (!idx_Find(dir, lbl_stem, 1, lbl, sizeof lbl))
        return sp_Error(SP_ERR_NOT_FOUND, "%s: no %s-idx1-ubyte[.gz] in it", dir, lbl_stem);
    return dataset_LoadIdx(img, lbl, d);
}

/* Both splits share one class count: the model's output layer. */
static void unify_Classes(dataset *train, dataset *test)
{
    int k = train->classes > test->classes ? train->classes : test->classes;
    train->classes = test->classes = k;
}

static spStatus open_IdxDir(const char *dir, dataset *train, dataset *test)
{
    dataset tr = {0}, te = {0};
    spStatus s = open_IdxSplit(dir, "train", &tr);
    if (s == SP_OK)
        s = open_IdxSplit(dir, "t10k", &te);
    if (s == SP_OK && tr.dim != te.dim)
        s = sp_Error(SP_ERR_FORMAT, "%s: train images have %zu pixels but test images %zu", dir,
                     tr.dim, te.dim);
    if (s != SP_OK) {
        dataset_Free(&tr);
        dataset_Free(&te);
        return s;
    }
    unify_Classes(&tr, &te);
    *train = tr;
    *test = te;
    return SP_OK;
}

/* "fashion-mnist" / "mnist": $SPIRT_DATA_DIR/<name>/, then $SPIRT_DATA_DIR
 * itself (it may point straight at the files), then the Debian location. */
static spStatus open_Named(const char *name, dataset *train, dataset *test)
{
    char cand[3][4096], looked[3 * 4096 + 16] = "";
    int nc = 0;
    const char *env = getenv("SPIRT_DATA_DIR");
    if (env && *env) {
        snprintf(cand[nc++], sizeof cand[0], "%s/%s", env, name);
        snprintf(cand[nc++], sizeof cand[0], "%s", env);
    }
    snprintf(cand[nc++], sizeof cand[0], "%s/%s", DATASET_SYSTEM_DIR, name);
    for (int i = 0; i < nc; i++) {
        char probe[4096];
        if (is_dir(cand[i]) && idx_Find(cand[i], "train-images", 3, probe, sizeof probe))
        {
            spStatus s = open_IdxDir(cand[i], train, test);
            return s == SP_OK ? s : sp_Wrap(s, "dataset %s", name);
        }
        if (i)
            strcat(looked, ", ");
        strcat(looked, cand[i]);
    }
    if (strcmp(name, "fashion-mnist") == 0)
        return sp_Error(SP_ERR_NOT_FOUND,
                        "dataset fashion-mnist not found (looked in %s); "
                        "`apt-get install dataset-fashion-mnist` provides it, or set SPIRT_DATA_DIR "
                        "to a directory holding its IDX files",
                        looked);
    return sp_Error(SP_ERR_NOT_FOUND,
                    "dataset %s not found (looked in %s); put its IDX files "
                    "(train-images-idx3-ubyte.gz, ...) in %s/%s or set SPIRT_DATA_DIR",
                    name, looked, DATASET_SYSTEM_DIR, name);
}

/* Format from the extension, ignoring a trailing ".gz" (zlib reads both). */
static const char *text_Format(const char *path)
{
    size_t n = strlen(path);
    if (n > 3 && strcasecmp(path + n - 3, ".gz") == 0)
        n -= 3;
    static const struct { const char *ext, *fmt; } map[] = {
        {".svm", "libsvm"}, {".libsvm", "libsvm"}, {".txt", "libsvm"}, {".csv", "csv"}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
        size_t e = strlen(map[i].ext);
        if (n > e && strncasecmp(path + n - e, map[i].ext, e) == 0)
            return map[i].fmt;
    }
    return NULL;
}

/* The test split's features: rows first.. of all, copied (dense or CSR). */
static spStatus split_Copy(const char *path, const dataset *all, size_t first, dataset *te)
{
    if (!dataset_IsSparse(all)) {
        spStatus s = textio_AllocRows(te->n, te->dim, &te->x);
        if (s == SP_OK)
            memcpy(te->x, all->x + first * all->dim, te->n * te->dim * sizeof *te->x);
        return s;
    }
    size_t base = all->ptr[first], nnz = all->ptr[all->n] - base;
    te->ptr = malloc(sizeof *te->ptr * (te->n + 1));
    te->col = malloc(sizeof *te->col * (nnz ? nnz : 1));
    te->val = malloc(sizeof *te->val * (nnz ? nnz : 1));
    if (!te->ptr || !te->col || !te->val)
        return sp_Error(SP_ERR_NOMEM, "%s: cannot allocate the test split", path);
    for (size_t i = 0; i <= te->n; i++)
        te->ptr[i] = all->ptr[first + i] - base;
    if (nnz) {
        memcpy(te->col, all->col + base, nnz * sizeof *te->col);
        memcpy(te->val, all->val + base, nnz * sizeof *te->val);
    }
    return SP_OK;
}

int dataset_IsLibsvmPath(const char *name_or_path)
{
    const char *fmt = name_or_path ? text_Format(name_or_path) : NULL;
    return fmt && strcmp(fmt, "libsvm") == 0;
}

/* Keeps the first n - n/6 rows as train and moves the rest to test. */
static spStatus split_Tail(const char *path, dataset *all, dataset *train, dataset *test)
{
    size_t n_test = all->n / 6;
    if (n_test == 0)
        return sp_Error(SP_ERR_INVALID, "%s: %zu rows are too few to split off a test set (need 6)",
                        path, all->n);
    dataset te = *all;
    te.x = NULL;
    te.ptr = NULL;
    te.col = NULL;
    te.val = NULL;
    te.n = n_test;
    size_t first = all->n - n_test;
    spStatus s = split_Copy(path, all, first, &te);
    te.y = s == SP_OK ? malloc(te.n * sizeof *te.y) : NULL;
    if (s == SP_OK && !te.y)
        s = sp_Error(SP_ERR_NOMEM, "%s: cannot allocate the test split", path);
    if (s != SP_OK) {
        te.y = NULL;
        dataset_Free(&te);
        return s;
    }
    memcpy(te.y, all->y + first, te.n * sizeof *te.y);
    all->n = first; /* the tail of the train arrays is simply unused */
    *train = *all;
    *test = te;
    return SP_OK;
}

static spStatus open_TextFile(const char *path, const char *fmt, dataset *train, dataset *test)
{
    dataset all = {0};
    spStatus s = strcmp(fmt, "csv") == 0 ? dataset_LoadCsv(path, -1, &all)
                                         : dataset_LoadLibsvm(path, 0, &all);
    if (s == SP_OK)
        s = split_Tail(path, &all, train, test);
    if (s != SP_OK)
        dataset_Free(&all);
    return s;
}

void dataset_Standardize(dataset *train, dataset *test)
{
    /* One mean and deviation over every training pixel, applied to both
     * splits: centred inputs let plain SGD take larger useful steps. */
    size_t n = train->n * train->dim;
    if (n == 0)
        return;
    double sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++) {
        sum += train->x[i];
        sq += (double)train->x[i] * train->x[i];
    }
    double mean = sum / (double)n, var = sq / (double)n - mean * mean;
    float m = (float)mean, inv = var > 1e-12 ? (float)(1.0 / sqrt(var)) : 1.0f;
    for (size_t i = 0; i < n; i++)
        train->x[i] = (train->x[i] - m) * inv;
    for (size_t i = 0; i < test->n * test->dim; i++)
        test->x[i] = (test->x[i] - m) * inv;
}

static spStatus open_Images(spStatus st, dataset *train, dataset *test)
{
    if (st == SP_OK)
        dataset_Standardize(train, test);
    return st;
}

spStatus dataset_Open(const char *name_or_path, dataset *train, dataset *test)
{
    if (!name_or_path || !*name_or_path)
        return sp_Error(SP_ERR_INVALID, "no dataset name or path given");
    const char *p = name_or_path;
    if (strcmp(p, "fashion-mnist") == 0 || strcmp(p, "mnist") == 0)
        return open_Images(open_Named(p, train, test), train, test);
    if (is_dir(p))
        return open_Images(open_IdxDir(p, train, test), train, test);
    if (access(p, F_OK) != 0)
        return sp_Error(SP_ERR_NOT_FOUND,
                        "dataset %s: no such file or directory, and not a known name "
                        "(fashion-mnist, mnist)",
                        p);
    const char *fmt = text_Format(p);
    if (!fmt)
        return sp_Error(SP_ERR_INVALID,
                        "dataset %s: unknown format (expected .svm, .libsvm, .txt, .csv, "
                        "optionally .gz, or a directory of IDX files)",
                        p);
    return open_TextFile(p, fmt, train, test);
}

void dataset_ShardRange(size_t n, int N, int r, size_t *offset, size_t *length)
{
    if (N <= 0 || r < 0 || r >= N) {
        *offset = 0;
        *length = 0;
        return;
    }
    size_t q = n / (size_t)N, rem = n % (size_t)N, rr = (size_t)r;
    *offset = q * rr + (rr < rem ? rr : rem);
    *length = q + (rr < rem);
}

void dataset_EpochOrder(size_t len, uint64_t seed, long epoch, int shard, uint32_t *perm)
{
    rng g;
    uint64_t stream = DATASET_SHUFFLE_TAG ^ ((uint64_t)epoch << 20) ^ (uint64_t)(uint32_t)shard;
    rng_Seed(&g, seed, stream);
    for (size_t i = 0; i < len; i++)
        perm[i] = (uint32_t)i;
    /* Fisher-Yates: every permutation equally likely. */
    for (size_t i = len; i > 1; i--) {
        size_t j = (size_t)rng_Below(&g, i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

csr_rows dataset_Rows(const dataset *d, size_t first, size_t n)
{
    csr_rows r = {n, d->ptr + first, d->col, d->val};
    return r;
}

void dataset_Gather(const dataset *d, size_t base, const uint32_t *idx, int b, float *x,
                    int32_t *y)
{
    for (int i = 0; i < b; i++) {
        size_t row = base + idx[i];
        float *xi = x + (size_t)i * d->dim;
        if (dataset_IsSparse(d)) {
            memset(xi, 0, d->dim * sizeof *x);
            for (size_t k = d->ptr[row]; k < d->ptr[row + 1]; k++)
                xi[d->col[k]] = d->val[k];
        } else {
            memcpy(xi, d->x + row * d->dim, d->dim * sizeof *x);
        }
        y[i] = d->y[row];
    }
}

void dataset_BatchFree(dataset_batch *buf)
{
    free(buf->ptr);
    free(buf->col);
    free(buf->val);
    memset(buf, 0, sizeof *buf);
}

/* Appends row `row`'s non-zeros to buf at *nnz (growing it). */
static spStatus batch_AddRow(const dataset *d, size_t row, dataset_batch *buf, size_t *nnz)
{
    size_t need = *nnz + (dataset_IsSparse(d) ? d->ptr[row + 1] - d->ptr[row] : d->dim);
    if (need > buf->nnz_cap) {
        /* col and val share one capacity */
        size_t cap = buf->nnz_cap;
        spStatus s = textio_Grow((void **)&buf->col, &cap, need, sizeof *buf->col);
        if (s != SP_OK)
            return s;
        void *v = realloc(buf->val, cap * sizeof *buf->val);
        if (!v)
            return sp_Error(SP_ERR_NOMEM, "cannot allocate a sparse batch of %zu entries", cap);
        buf->val = v;
        buf->nnz_cap = cap;
    }
    if (dataset_IsSparse(d)) {
        size_t k0 = d->ptr[row], len = d->ptr[row + 1] - k0;
        if (len) {
            memcpy(buf->col + *nnz, d->col + k0, len * sizeof *buf->col);
            memcpy(buf->val + *nnz, d->val + k0, len * sizeof *buf->val);
        }
        *nnz += len;
        return SP_OK;
    }
    const float *x = d->x + row * d->dim;
    for (size_t j = 0; j < d->dim; j++)
        if (x[j] != 0.0f) {
            buf->col[*nnz] = (uint32_t)j;
            buf->val[(*nnz)++] = x[j];
        }
    return SP_OK;
}

spStatus dataset_GatherSparse(const dataset *d, size_t base, const uint32_t *idx, int b,
                              dataset_batch *buf, csr_rows *out, int32_t *y)
{
    spStatus s = textio_Grow((void **)&buf->ptr, &buf->rows_cap, (size_t)b + 1, sizeof *buf->ptr);
    if (s != SP_OK)
        return s;
    size_t nnz = 0;
    buf->ptr[0] = 0;
    for (int i = 0; i < b; i++) {
        size_t row = base + idx[i];
        if ((s = batch_AddRow(d, row, buf, &nnz)) != SP_OK)
            return s;
        buf->ptr[i + 1] = nnz;
        y[i] = d->y[row];
    }
    out->n = (size_t)b;
    out->ptr = buf->ptr;
    out->col = buf->col;
    out->val = buf->val;
    return SP_OK;
}
