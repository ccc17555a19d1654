/* ctest-label: unit (starts no server) */
/* test_datagen.c - `spirt datagen sparse` as a user meets it (help, bad
 * options exit 2, the Bayes accuracy it prints), and single-process
 * training of the sparse linear models on what it writes: logreg and svm,
 * with each label convention, learn most of what the teacher allows; a
 * corrupt file is an error naming its line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli.h"
#include "data/dataset.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    cli_TempDir(dir, sizeof dir);
    return dir[0] ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cli_RemoveDir(dir);
    return 0;
}

static void help_and_bad_options(void **state)
{
    (void)state;
    const char *help[] = {"datagen", "sparse", "--help", NULL};
    assert_int_equal(cli_Run(dir, 30, help), 0);
    const char *expected[] = {"--out", "--rows", "--dim", "--nnz", "--classes", "--noise",
                              "--labels", "--seed", "bayes_accuracy"};
    for (size_t i = 0; i < sizeof expected / sizeof *expected; i++)
        assert_non_null(strstr(cli_Log(dir), expected[i]));
    const char *top[] = {"--help", NULL};
    assert_int_equal(cli_Run(dir, 30, top), 0);
    assert_non_null(strstr(cli_Log(dir), "datagen"));
    char out[400];
    snprintf(out, sizeof out, "%s/x.svm", dir);
    static const struct {
        const char *args[10];
        const char *says;
    } bad[] = {
        {{"datagen", "dense", "--out", "x", NULL}, "unknown kind"},
        {{"datagen", "sparse", NULL}, "--out"},
        {{"datagen", "sparse", "--out", "OUT", "--noise", "2", NULL}, "--noise"},
        {{"datagen", "sparse", "--out", "OUT", "--labels", "pm1", "--classes", "3", NULL},
         "2 classes"},
        {{"datagen", "sparse", "--out", "OUT", "--rows", NULL}, "needs a value"},
        {{"datagen", "sparse", "--out", "OUT", "--colour", "red", NULL}, "--colour"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *args[10];
        for (int k = 0; k < 10; k++)
            args[k] = bad[i].args[k] && strcmp(bad[i].args[k], "OUT") == 0 ? out : bad[i].args[k];
        assert_int_equal(cli_Run(dir, 30, args), 2);
        if (!strstr(cli_Log(dir), bad[i].says))
            fail_msg("case %zu: \"%s\" should say \"%s\"", i, cli_Log(dir), bad[i].says);
    }
    const char *unwritable[] = {"datagen", "sparse", "--out", "/nonexistent-dir/x.svm", NULL};
    assert_int_equal(cli_Run(dir, 30, unwritable), 1);
    assert_non_null(strstr(cli_Log(dir), "/nonexistent-dir/x.svm"));
}

/* Generates a file and returns the Bayes accuracy the command printed. */
static double generate(const char *path, const char *labels, const char *classes)
{
    const char *args[] = {"datagen", "sparse", "--out", path, "--rows", "24000", "--labels",
                          labels, "--classes", classes, "--informative", "2048", NULL};
    assert_int_equal(cli_Run(dir, 120, args), 0);
    const char *b = strstr(cli_Log(dir), "\nbayes_accuracy ");
    if (!b)
        fail_msg("no bayes_accuracy line in \"%s\"", cli_Log(dir));
    double bayes = atof(b + strlen("\nbayes_accuracy "));
    assert_true(bayes > 0 && bayes <= 1);
    return bayes;
}

/* The test split's most frequent class: what a model learning nothing gets. */
static double majority_rate(const char *path)
{
    dataset tr = {0}, te = {0};
    assert_int_equal(dataset_Open(path, &tr, &te), SP_OK);
    long counts[16] = {0}, best = 0;
    for (size_t i = 0; i < te.n; i++)
        if (te.y[i] < 16 && ++counts[te.y[i]] > best)
            best = counts[te.y[i]];
    double rate = (double)best / (double)te.n;
    dataset_Free(&tr);
    dataset_Free(&te);
    return rate;
}

static void sparse_models_learn(void **state)
{
    (void)state;
    static const struct {
        const char *labels, *classes, *model;
    } runs[] = {
        {"01", "2", "logreg"}, {"pm1", "2", "svm"}, {"1k", "3", "logreg"}, {"1k", "3", "svm"},
    };
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        char path[400], report[400];
        snprintf(path, sizeof path, "%s/d%zu.svm.gz", dir, i);
        snprintf(report, sizeof report, "%s/r%zu.json", dir, i);
        double bayes = generate(path, runs[i].labels, runs[i].classes);
        double base = majority_rate(path);
        const char *args[] = {"train", "--arch", "single", "--model", runs[i].model,
                              "--dataset", path, "--epochs", "4", "--batch", "64", "--lr", "1",
                              "--report", report, NULL};
        cJSON *r = cli_Report(dir, cli_Run(dir, 300, args), runs[i].model, report);
        double acc = cli_Num(r, "test_accuracy");
        /* at least half of the way from learning nothing to the best possible */
        if (!(acc > base + 0.5 * (bayes - base)))
            fail_msg("%s on %s labels: accuracy %.4f, majority %.4f, Bayes %.4f",
                     runs[i].model, runs[i].labels, acc, base, bayes);
        assert_true(acc <= bayes + 0.03);
        cJSON_Delete(r);
    }
}

static void corrupt_file_names_its_line(void **state)
{
    (void)state;
    char path[400];
    snprintf(path, sizeof path, "%s/bad.svm", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 20; i++)
        fprintf(f, "%d %d:1 %d:1\n", i % 2, 1 + i, 1000 + i);
    fprintf(f, "1 0:1\n");
    fclose(f);
    const char *args[] = {"train", "--arch", "single", "--model", "svm", "--dataset", path,
                          NULL};
    assert_int_equal(cli_Run(dir, 60, args), 1);
    if (!strstr(cli_Log(dir), "bad.svm:21:"))
        fail_msg("\"%s\" should name bad.svm:21:", cli_Log(dir));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(help_and_bad_options),
        cmocka_unit_test(sparse_models_learn),
        cmocka_unit_test(corrupt_file_names_its_line),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
