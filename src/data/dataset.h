/* dataset.h - labelled datasets in memory, loaders, sharding and shuffling.
 *
 * A dataset is n rows of dim float32 features and int32 labels in
 * [0, classes), held in one of two forms: dense (IDX pixels scaled to [0,1],
 * CSV: x, row-major) or sparse (LibSVM: CSR in ptr/col/val, x NULL), never
 * converted from one to the other as a whole - a dense model reads sparse
 * rows expanded a batch at a time (dataset_Gather). Loaders never crash on
 * malformed input: they fail with SP_ERR_FORMAT and a message naming the
 * file and the line (text formats) or byte offset (IDX). */
#ifndef SPIRT_DATASET_H
#define SPIRT_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "core/csr.h"
#include "core/status.h"

typedef struct {
    size_t n;          /* rows */
    size_t dim;        /* features per row (= c*h*w for images) */
    int c, h, w;       /* image shape when known (IDX), else 1,1,dim */
    int classes;       /* max label + 1, or as declared */
    float *x;          /* dense: n * dim, row-major; NULL when sparse */
    int32_t *y;        /* n */
    size_t *ptr;       /* sparse: n + 1 offsets into col/val (core/csr.h); NULL when dense */
    uint32_t *col;     /* sparse: 0-based columns, increasing within a row */
    float *val;
} dataset;

static inline int dataset_IsSparse(const dataset *d) { return d->ptr != NULL; }
/* Rows first .. first+n-1 of a sparse dataset as a CSR view. */
csr_rows dataset_Rows(const dataset *d, size_t first, size_t n);

/* IDX (MNIST / Fashion-MNIST), gzip-compressed or raw (detected by magic). */
spStatus dataset_LoadIdx(const char *images_path, const char *labels_path, dataset *out);
/* LibSVM sparse text: "label idx:val idx:val ..." with 1-based indices,
 * loaded sparse (CSR; a row's indices may come in any order but not twice).
 * dim = 0 infers it from the largest index. Labels are mapped to
 * 0..classes-1: {-1,+1} -> {0,1}; 1..K (no 0 anywhere, some label above 1)
 * -> 0..K-1; other non-negative integers are kept. */
spStatus dataset_LoadLibsvm(const char *path, size_t dim, dataset *out);
/* CSV of numbers, one row per sample, label in column label_col (0-based,
 * -1 = last); a first line that does not parse as numbers is a header. */
spStatus dataset_LoadCsv(const char *path, int label_col, dataset *out);

/* Standardizes features in place: subtracts the training set's mean over
 * every feature value and divides by its deviation, on both splits. */
void dataset_Standardize(dataset *train, dataset *test);

/* Opens a named dataset or a path, returning its train and test splits
 * (image datasets standardized with dataset_Standardize):
 *  "fashion-mnist" / "mnist": IDX files in SPIRT_DATA_DIR or the Debian
 *      package location (/usr/share/datasets/<name>/);
 *  a directory: IDX files train-images-idx3-ubyte[.gz] etc. inside it;
 *  "FILE.svm|.libsvm|.txt" or "FILE.csv": the last 1/6 of rows becomes test.
 * A missing dataset's error says what to install or where it looked. */
spStatus dataset_Open(const char *name_or_path, dataset *train, dataset *test);

void dataset_Free(dataset *d);

/* 1 when dataset_Open reads name_or_path as a LibSVM file (by its
 * extension): a sparse dataset. */
int dataset_IsLibsvmPath(const char *name_or_path);

/* Shard r of N over n rows: offset (n/N)*r + min(n%N, r),
 * length n/N + (r < n%N). */
void dataset_ShardRange(size_t n, int N, int r, size_t *offset, size_t *length);

/* The order in which a shard's rows are visited in `epoch`: a permutation of
 * 0..len-1 drawn from (seed, epoch, shard) so every process computes the same
 * one. perm has len entries. */
void dataset_EpochOrder(size_t len, uint64_t seed, long epoch, int shard, uint32_t *perm);

/* Copies rows idx[0..b-1] (relative to `base`) into x (b*dim, sparse rows
 * expanded) and y (b). */
void dataset_Gather(const dataset *d, size_t base, const uint32_t *idx, int b, float *x,
                    int32_t *y);

/* A batch of sparse rows that grows as needed (dataset_GatherSparse). */
typedef struct {
    size_t *ptr;
    uint32_t *col;
    float *val;
    size_t rows_cap, nnz_cap;
} dataset_batch;

/* Rows idx[0..b-1] (relative to `base`) as a CSR batch in buf (view in
 * *out), labels into y (b). A dense dataset's rows give their non-zeros. */
spStatus dataset_GatherSparse(const dataset *d, size_t base, const uint32_t *idx, int b,
                              dataset_batch *buf, csr_rows *out, int32_t *y);
void dataset_BatchFree(dataset_batch *buf);

#endif
