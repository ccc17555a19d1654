/* ctest-label: slow */
/* test_sparse_e2e.c - sparse models end to end, as a user runs them: a
 * hashed 2^20-feature LibSVM file from `spirt datagen sparse`, then
 * `spirt train --arch spirt|all-reduce|scatter-reduce --workers 4` for
 * logreg, and SPIRT for svm (every step its own function process, real
 * redis-servers with the module, nats-server).
 *  - Accuracy: within 1 point of single-process training with the same
 *    total batch (workers x batch) and learning rate.
 *  - Bytes: what a worker moves per iteration is the rows' non-zeros, the
 *    parameter rows they touch and sparse gradients: at most 400 kB, and
 *    under a twentieth of one dense parameter vector (which a dense
 *    gradient step alone would move twice).
 *  - Every peer ends with the same model, and AllReduce and ScatterReduce
 *    with SPIRT's (the mean of the same sparse gradients by the same
 *    kernel, in the same order, then the same update). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cli.h"

#define WORKERS 4
#define BATCH 64
#define DIM (1 << 20)
#define MAX_BYTES 400000.0

static char dir[256], data[400];

static int setup(void **state)
{
    (void)state;
    cli_TempDir(dir, sizeof dir);
    if (!dir[0])
        return -1;
    snprintf(data, sizeof data, "%s/hashed.svm.gz", dir);
    const char *args[] = {"datagen", "sparse", "--out", data, "--rows", "60000", "--dim",
                          "1048576", "--nnz", "24", NULL};
    return cli_Run(dir, 120, args) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cli_RemoveDir(dir);
    return 0;
}

static cJSON *train(const char *arch, const char *model, int batch, const char *name)
{
    char report[400], b[16];
    snprintf(report, sizeof report, "%s/%s.json", dir, name);
    snprintf(b, sizeof b, "%d", batch);
    const char *single[] = {"train", "--arch", arch, "--model", model, "--dataset", data,
                            "--epochs", "3", "--batch", b, "--lr", "1", "--report", report,
                            NULL};
    const char *spirt[] = {"train", "--arch", arch, "--workers", "4", "--model", model,
                           "--dataset", data, "--epochs", "3", "--batch", b, "--lr", "1",
                           "--report", report, NULL};
    int rc = cli_Run(dir, 600, strcmp(arch, "single") == 0 ? single : spirt);
    return cli_Report(dir, rc, name, report);
}

/* Accuracy against single's, bytes per worker and iteration, agreement;
 * returns the final model's checksum (static). */
static const char *check_Run(const char *model, const char *arch, double acc_single)
{
    static char crc[16];
    char name[64];
    snprintf(name, sizeof name, "%s-%s", arch, model);
    cJSON *d = train(arch, model, BATCH, name);
    double acc = cli_Num(d, "test_accuracy");
    const cJSON *det = cJSON_GetObjectItem(d, "details");
    double bytes = cli_Num(det, "bytes_per_worker_per_iteration");
    /* one dense parameter vector: (dim + 1) rows of 2 classes */
    double dense = 4.0 * (DIM + 1) * 2;
    printf("%s %s: accuracy %.4f (single %.4f); %.0f bytes per worker and iteration "
           "(a dense parameter vector: %.0f)\n", model, arch, acc, acc_single, bytes, dense);
    if (!(fabs(acc_single - acc) <= 0.01))
        fail_msg("%s %s: accuracy %.4f is not within 1 point of single's %.4f", model, arch, acc,
                 acc_single);
    if (!(bytes > 0 && bytes <= MAX_BYTES && bytes < dense / 20))
        fail_msg("%s %s: %.0f bytes per worker and iteration", model, arch, bytes);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(det, "models_agree")));
    const cJSON *m0 = cJSON_GetArrayItem(cJSON_GetObjectItem(det, "final_models"), 0);
    const cJSON *c = cJSON_GetObjectItem(m0, "crc32c");
    assert_true(cJSON_IsString(c));
    snprintf(crc, sizeof crc, "%s", c->valuestring);
    cJSON_Delete(d);
    return crc;
}

/* every_arch: also AllReduce and ScatterReduce, which must end with
 * SPIRT's model. The exchange is the same for every model (sparse rows of
 * gradients), so one model covers it; the other trains with SPIRT only. */
static void check_Model(const char *model, int every_arch)
{
    char name[64], spirt_crc[16];
    snprintf(name, sizeof name, "single-%s", model);
    cJSON *s = train("single", model, WORKERS * BATCH, name);
    double acc = cli_Num(s, "test_accuracy");
    cJSON_Delete(s);
    snprintf(spirt_crc, sizeof spirt_crc, "%s", check_Run(model, "spirt", acc));
    if (!every_arch)
        return;
    assert_string_equal(check_Run(model, "all-reduce", acc), spirt_crc);
    assert_string_equal(check_Run(model, "scatter-reduce", acc), spirt_crc);
}

static void logreg_trains_sparse(void **state)
{
    (void)state;
    check_Model("logreg", 1);
}

static void svm_trains_sparse(void **state)
{
    (void)state;
    check_Model("svm", 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(logreg_trains_sparse),
        cmocka_unit_test(svm_trains_sparse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
