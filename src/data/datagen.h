/* datagen.h - datasets written from a known ground truth, for tests and
 * benchmarks: the file is in a public format the loaders read, and the
 * generator states the best accuracy any model can reach on it.
 *
 * sparse: LibSVM rows of hashed features (a few dozen of a 2^20 space),
 * labelled by a sparse linear teacher - class argmax_c sum_j W[j][c] over
 * the row's features, W standard normal on the `informative` most popular
 * features and 0 elsewhere (the long tail of a hashed space carries
 * little signal) - then with probability `noise` replaced by a class drawn
 * uniformly. The teacher's rule is the Bayes
 * classifier, so the best achievable accuracy is 1 - noise + noise/classes. */
#ifndef SPIRT_DATAGEN_H
#define SPIRT_DATAGEN_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum {
    DATAGEN_LABELS_ZERO = 0,  /* 0..K-1 */
    DATAGEN_LABELS_PM = 1,    /* -1/+1 (two classes) */
    DATAGEN_LABELS_ONE = 2    /* 1..K */
} datagen_labels;

/* Largest dimension written: the LibSVM loader's largest index. */
#define DATAGEN_MAX_DIM ((size_t)1 << 26)

typedef struct {
    size_t rows;
    size_t dim;             /* features are 1..dim in the file */
    int nnz;                /* mean features drawn per row (nnz/2 .. nnz*3/2, repeats dropped) */
    int classes;
    double noise;           /* probability a label is redrawn uniformly, in [0, 1) */
    double skew;            /* popularity: feature rank = dim * u^skew, u uniform (>= 1) */
    size_t informative;     /* features of rank below this carry the teacher's weight */
    datagen_labels labels;
    uint64_t seed;
} datagen_sparse;

typedef struct {
    double bayes_accuracy;    /* 1 - noise + noise / classes */
    double teacher_accuracy;  /* the teacher's accuracy on the rows written */
    size_t nnz;               /* entries written */
} datagen_result;

/* Defaults: 60000 rows, 2^20 features, 24 per row, 2 classes, noise 0.05,
 * skew 4, 4096 informative, labels 0..K-1, seed 1. */
void datagen_SparseDefaults(datagen_sparse *g);
/* Checks g (SP_ERR_INVALID naming the field). */
spStatus datagen_SparseCheck(const datagen_sparse *g);
/* Writes the file (gzip-compressed when path ends in ".gz"). */
spStatus datagen_Sparse(const datagen_sparse *g, const char *path, datagen_result *res);

#endif
