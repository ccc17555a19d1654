/* cmd_datagen.c - `spirt datagen KIND --out FILE [options]`: writes a
 * dataset from a known ground truth (data/datagen.h) and prints the best
 * accuracy a model can reach on it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "data/datagen.h"

static void datagen_Usage(FILE *f)
{
    datagen_sparse d;
    datagen_SparseDefaults(&d);
    fprintf(f,
            "usage: spirt datagen sparse --out FILE[.gz] [options]\n"
            "\n"
            "Writes a LibSVM file of hashed sparse features labelled by a sparse linear\n"
            "teacher (class = argmax of the summed weights of a row's features; only\n"
            "the --informative most popular features have weight), each\n"
            "label redrawn uniformly with probability --noise, and prints the best\n"
            "accuracy any model can reach on it (bayes_accuracy = 1 - noise + noise/K)\n"
            "and the teacher's accuracy on the rows written. A .gz name is compressed.\n"
            "\n"
            "options:\n"
            "  --out FILE      where to write (required)\n"
            "  --rows N        rows (default %zu)\n"
            "  --dim D         feature space, indices 1..D (default %zu)\n"
            "  --nnz K         mean features per row, each row K/2..3K/2 (default %d)\n"
            "  --classes K     classes (default %d)\n"
            "  --noise P       label noise probability in [0, 1) (default %g)\n"
            "  --skew S        feature popularity: rank = D * u^S, S >= 1 (default %g)\n"
            "  --informative N the N most popular features carry the teacher (default %zu)\n"
            "  --labels FORM   01 (0..K-1), pm1 (-1/+1, two classes), 1k (1..K) (default 01)\n"
            "  --seed N        seed (default %llu)\n",
            d.rows, d.dim, d.nnz, d.classes, d.noise, d.skew, d.informative, (unsigned long long)d.seed);
}

static int parse_Num(const char *opt, const char *v, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "spirt datagen: %s: \"%s\" is not a number in %g..%g\n", opt, v, lo, hi);
        return 0;
    }
    *out = x;
    return 1;
}

/* One option and its value into g; 0 (after a message) if bad. */
static int datagen_Option(const char *opt, const char *v, datagen_sparse *g, const char **out)
{
    double x;
    if (strcmp(opt, "--out") == 0) {
        *out = v;
        return 1;
    }
    if (strcmp(opt, "--labels") == 0) {
        if (strcmp(v, "01") == 0)
            g->labels = DATAGEN_LABELS_ZERO;
        else if (strcmp(v, "pm1") == 0)
            g->labels = DATAGEN_LABELS_PM;
        else if (strcmp(v, "1k") == 0)
            g->labels = DATAGEN_LABELS_ONE;
        else {
            fprintf(stderr, "spirt datagen: --labels: \"%s\" is not 01, pm1 or 1k\n", v);
            return 0;
        }
        return 1;
    }
    static const struct { const char *name; double lo, hi; } nums[] = {
        {"--rows", 1, 2147483648.0}, {"--dim", 1, (double)DATAGEN_MAX_DIM},
        {"--nnz", 1, 100000},        {"--classes", 2, 65535},
        {"--noise", 0, 1},           {"--skew", 1, 64},
        {"--seed", 0, 9007199254740992.0}, {"--informative", 1, (double)DATAGEN_MAX_DIM},
    };
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
        if (strcmp(opt, nums[i].name) != 0)
            continue;
        if (!parse_Num(opt, v, nums[i].lo, nums[i].hi, &x))
            return 0;
        switch (i) {
        case 0: g->rows = (size_t)x; break;
        case 1: g->dim = (size_t)x; break;
        case 2: g->nnz = (int)x; break;
        case 3: g->classes = (int)x; break;
        case 4: g->noise = x; break;
        case 5: g->skew = x; break;
        case 6: g->seed = (uint64_t)x; break;
        default: g->informative = (size_t)x; break;
        }
        return 1;
    }
    fprintf(stderr, "spirt datagen: unknown option %s (see spirt datagen --help)\n", opt);
    return 0;
}

int cmd_Datagen(int argc, char **argv)
{
    if (argc < 3 || strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0) {
        datagen_Usage(argc < 3 ? stderr : stdout);
        return argc < 3 ? 2 : 0;
    }
    if (strcmp(argv[2], "sparse") != 0) {
        fprintf(stderr, "spirt datagen: unknown kind \"%s\" (want sparse)\n", argv[2]);
        return 2;
    }
    datagen_sparse g;
    datagen_SparseDefaults(&g);
    const char *out = NULL;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            datagen_Usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "spirt datagen: %s needs a value\n", argv[i]);
            return 2;
        }
        if (!datagen_Option(argv[i], argv[i + 1], &g, &out))
            return 2;
        i++;
    }
    if (!out) {
        fprintf(stderr, "spirt datagen: --out FILE is required\n");
        return 2;
    }
    if (datagen_SparseCheck(&g) != SP_OK) {
        fprintf(stderr, "spirt datagen: %s\n", sp_LastError());
        return 2;
    }
    datagen_result r;
    if (datagen_Sparse(&g, out, &r) != SP_OK) {
        fprintf(stderr, "spirt datagen: %s\n", sp_LastError());
        return 1;
    }
    printf("wrote %zu rows, %zu non-zeros, dimension %zu, %d classes to %s\n", g.rows, r.nnz,
           g.dim, g.classes, out);
    printf("bayes_accuracy %.6f\n", r.bayes_accuracy);
    printf("teacher_accuracy %.6f\n", r.teacher_accuracy);
    return 0;
}
