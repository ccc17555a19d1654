/* dataset.h - labelled datasets in memory, loaders, sharding and shuffling.
 *
 * Every loader produces the same dense form: n rows of dim float32 features
 * (IDX pixels scaled to [0,1]) and int32 labels in [0, classes). Loaders never
 * crash on malformed input: they fail with SP_ERR_FORMAT and a message naming
 * the file and the line (text formats) or byte offset (IDX). */
#ifndef SPIRT_DATASET_H
#define SPIRT_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct {
    size_t n;          /* rows */
    size_t dim;        /* features per row (= c*h*w for images) */
    int c, h, w;       /* image shape when known (IDX), else 1,1,dim */
    int classes;       /* max label + 1, or as declared */
    float *x;          /* n * dim, row-major */
    int32_t *y;        /* n */
} dataset;

/* IDX (MNIST / Fashion-MNIST), gzip-compressed or raw (detected by magic). */
spStatus dataset_LoadIdx(const char *images_path, const char *labels_path, dataset *out);
/* LibSVM sparse text: "label idx:val idx:val ..." with 1-based indices.
 * dim = 0 infers it from the largest index. Labels are mapped to 0..classes-1:
 * {-1,+1} -> {0,1}; non-negative integers are kept. */
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

/* Shard r of N over n rows: offset (n/N)*r + min(n%N, r),
 * length n/N + (r < n%N). */
void dataset_ShardRange(size_t n, int N, int r, size_t *offset, size_t *length);

/* The order in which a shard's rows are visited in `epoch`: a permutation of
 * 0..len-1 drawn from (seed, epoch, shard) so every process computes the same
 * one. perm has len entries. */
void dataset_EpochOrder(size_t len, uint64_t seed, long epoch, int shard, uint32_t *perm);

/* Copies rows idx[0..b-1] (relative to `base`) into x (b*dim) and y (b). */
void dataset_Gather(const dataset *d, size_t base, const uint32_t *idx, int b, float *x,
                    int32_t *y);

#endif
