/* ctest-label: slow */
/* test_archs_e2e.c - MLLESS, ScatterReduce and AllReduce end to end on
 * Fashion-MNIST, as a user runs them: `spirt train --arch X` with the
 * shared redis-server, nats-server and every step as its own function
 * process, 4 workers.
 *  - AllReduce and ScatterReduce compute exactly what SPIRT computes (the
 *    mean of the same gradients, by the same kernel, in the same order, then
 *    the same update): on a short run each must end with a model bit for
 *    bit equal to SPIRT's (compared by checksum), every worker with the
 *    same one. SPIRT itself is held to single-process accuracy on a whole
 *    epoch by test_spirt_e2e.
 *  - MLLESS keeps a replica per worker: each takes its own whole step and
 *    the others' significant ones, so it is held to at least the accuracy
 *    of single-process training with the same total batch (less 1.5
 *    points) after a whole epoch; with every default it moves at most half
 *    of SPIRT's bytes per worker per iteration at SPIRT's accuracy (1.5
 *    points).
 *  - The bytes each architecture's own steps report must be the volume its
 *    algorithm moves (P float32 parameters, N workers; a tensor blob is 4P
 *    bytes plus a 24-byte header). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cli.h"
#include "ml/model.h"
#include "steps/mlless.h"

#define WORKERS 4

static char dir[256];
static double single_acc;
static char spirt_model[16]; /* SPIRT's final model (crc32c) on the short run */
static double P_BLOB; /* bytes of one parameter-sized tensor blob */
static double mlless_epoch_iters; /* iterations of MLLESS's default epoch */
static double mlless_epoch_acc;   /* and its test accuracy */

static int setup(void **state)
{
    (void)state;
    cli_TempDir(dir, sizeof dir);
    model_spec spec = {.kind = MODEL_MLP, .n_hidden = 1, .hidden = {128}, .in_c = 1, .in_h = 28,
                       .in_w = 28, .classes = 10};
    model *m;
    if (model_Create(&spec, &m) != SP_OK)
        return -1;
    P_BLOB = 4.0 * (double)model_ParamCount(m) + 24;
    model_Destroy(m);
    return dir[0] ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cli_RemoveDir(dir);
    return 0;
}

/* A short run: 32 iterations of 4 x 2 x 32 samples. */
static const char *const SHORT[] = {"--train-samples", "8192", "--test-samples", "2000", NULL};

static cJSON *train(const char *arch, const char *transport, const char *const *extra)
{
    char report[400], name[64];
    snprintf(name, sizeof name, "%s-%s%s", arch, transport, extra == SHORT ? "-short" : "");
    snprintf(report, sizeof report, "%s/%s.json", dir, name);
    const char *args[40] = {"train", "--arch", arch, "--workers", "4", "--minibatches", "2",
                            "--batch", "32", "--transport", transport, "--epochs", "1",
                            "--model", "mlp", "--hidden", "128", "--lr", "0.05", "--optimizer",
                            "momentum", "--momentum", "0.5", "--report", report};
    int n = 0;
    while (args[n])
        n++;
    for (int i = 0; extra && extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    return cli_Report(dir, cli_Run(dir, 1500, args), name, report);
}

/* The checksum every worker's final model has; fails unless they agree. */
static const char *final_model(const cJSON *r)
{
    const cJSON *d = cJSON_GetObjectItem(r, "details");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d, "models_agree")));
    const cJSON *m = cJSON_GetObjectItem(d, "final_models");
    assert_int_equal(cJSON_GetArraySize(m), WORKERS);
    const cJSON *crc = cJSON_GetObjectItem(cJSON_GetArrayItem(m, 0), "crc32c");
    assert_true(cJSON_IsString(crc));
    return crc->valuestring;
}

static const cJSON *steps_of(const cJSON *r)
{
    return cJSON_GetObjectItem(cJSON_GetObjectItem(r, "details"), "steps");
}

/* Bytes a step moved per worker per iteration. */
static double step_bytes(const cJSON *r, const char *step)
{
    const cJSON *s = cJSON_GetObjectItem(steps_of(r), step);
    assert_non_null(s);
    return cli_Num(s, "bytes");
}

/* Measured within 1% of the derived volume (the rest is Redis protocol). */
static void assert_volume(const cJSON *r, const char *step, double blobs, double extra)
{
    double got = step_bytes(r, step), want = blobs * P_BLOB + extra;
    print_message("  %-14s %10.0f bytes/worker/iteration, derived %10.0f\n", step, got, want);
    assert_true(fabs(got - want) <= 0.01 * want);
}

static void check_run(cJSON *r, const char *arch, const char *const *names, int n)
{
    print_message("%s, %d workers: accuracy %.4f\n", arch, WORKERS, cli_Num(r, "test_accuracy"));
    assert_int_equal((int)cli_Num(r, "workers"), WORKERS);
    assert_int_equal((int)cli_Num(r, "epochs"), 1);
    const cJSON *d = cJSON_GetObjectItem(r, "details");
    assert_string_equal(cJSON_GetObjectItem(d, "transport")->valuestring, "http");
    assert_string_equal(cJSON_GetObjectItem(d, "tensor_math")->valuestring, "in-database");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "failed_peers")), 0);
    for (int i = 0; i < n; i++)
        assert_non_null(cJSON_GetObjectItem(steps_of(r), names[i]));
    /* Retries (503s, timeouts) are part of normal operation; shown, since
     * many of them would explain a slow run. */
    const cJSON *s;
    cJSON_ArrayForEach(s, steps_of(r))
        if (cli_Num(s, "retries") > 0)
            print_message("  %s: %.0f retried call(s)\n", s->string, cli_Num(s, "retries"));
}

static void single_reference(void **state)
{
    (void)state;
    char report[400];
    snprintf(report, sizeof report, "%s/single.json", dir);
    const char *args[] = {"train", "--arch", "single", "--batch", "256", "--epochs", "1",
                          "--model", "mlp", "--hidden", "128", "--lr", "0.05", "--optimizer",
                          "momentum", "--momentum", "0.5",
                          "--report", report, NULL};
    assert_int_equal(cli_Run(dir, 600, args), 0);
    cJSON *r = cli_ReadJson(report);
    assert_non_null(r);
    single_acc = cli_Num(r, "test_accuracy");
    print_message("single, batch 256: accuracy %.4f\n", single_acc);
    assert_true(single_acc > 0.78);
    cJSON_Delete(r);
}

/* SPIRT on the short recipe (in-process: same handlers, same databases). */
static void spirt_reference(void **state)
{
    (void)state;
    cJSON *r = train("spirt", "inproc", SHORT);
    snprintf(spirt_model, sizeof spirt_model, "%s", final_model(r));
    print_message("spirt, short run: model %s\n", spirt_model);
    cJSON_Delete(r);
}

/* The same model as SPIRT's, on every worker. */
static void same_model_as_spirt(const cJSON *r)
{
    assert_true(spirt_model[0] != 0);
    assert_string_equal(final_model(r), spirt_model);
}

static void all_reduce_4_workers(void **state)
{
    (void)state;
    cJSON *r = train("all-reduce", "http", SHORT);
    const char *names[] = {"minibatch", "gradient", "average", "notify", "master_reduce",
                           "fetch_reduced", "update"};
    check_run(r, "all-reduce", names, 7);
    same_model_as_spirt(r);
    /* The master fetches N averages and stores 1 (spread over N workers);
     * every worker downloads the mean and stores it as its aggregate. */
    assert_volume(r, "master_reduce", (WORKERS + 1.0) / WORKERS, 0);
    assert_volume(r, "fetch_reduced", 2, 0);
    cJSON_Delete(r);
}

static void scatter_reduce_4_workers(void **state)
{
    (void)state;
    cJSON *r = train("scatter-reduce", "http", SHORT);
    const char *names[] = {"minibatch", "gradient", "average", "scatter", "chunk_reduce",
                           "chunk_gather", "update"};
    check_run(r, "scatter-reduce", names, 7);
    same_model_as_spirt(r);
    /* scatter: its average in, N chunks (P/N each) out; chunk_reduce: N
     * chunks of its own in, the merged chunk out; chunk_gather: N merged
     * chunks in, the aggregate out. Each chunk blob has its own header. */
    double hdr = 24.0 * (WORKERS - 1);
    assert_volume(r, "scatter", 2, hdr);
    assert_volume(r, "chunk_reduce", 1.0 + 1.0 / WORKERS, hdr);
    assert_volume(r, "chunk_gather", 2, hdr);
    cJSON_Delete(r);
}

static void mlless_4_workers(void **state)
{
    (void)state;
    cJSON *r = train("mlless", "http", NULL);
    const char *names[] = {"minibatch", "gradient", "average", "sparsify", "supervisor",
                           "apply"};
    check_run(r, "mlless", names, 6);
    double acc = cli_Num(r, "test_accuracy");
    print_message("  single, same total batch: %.4f\n", single_acc);
    /* Each replica takes its worker's whole step and the others'
     * significant ones (summed, not averaged): at least as far as single
     * with the same total batch. */
    assert_true(acc >= single_acc - 0.015);
    /* sparsify's own update and filter run inside the shared Redis: no
     * dense tensor crosses the network; apply moves only sparse updates
     * (the others' in, their sum out): less than one dense blob. */
    double sparse = step_bytes(r, "apply");
    print_message("  sparsify %.0f, apply %.0f bytes/worker/iteration (%.1f%% of the "
                  "coordinates a sparse update)\n", step_bytes(r, "sparsify"), sparse,
                  100 * sparse / (2 * (WORKERS - 1)) / 8 / ((P_BLOB - 24) / 4));
    assert_true(step_bytes(r, "sparsify") < 0.01 * P_BLOB);
    assert_true(sparse > 0 && sparse < P_BLOB);
    /* The replicas differ by the steps not yet sent, and that is no error. */
    const cJSON *d = cJSON_GetObjectItem(r, "details");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(d, "models_agree")));
    cJSON_Delete(r);
}

/* What a user compares: `spirt train --arch X --workers 4` with every
 * default (Fashion-MNIST, MLP, one epoch). MLLESS moves at most half of
 * SPIRT's bytes per worker per iteration, at SPIRT's accuracy (1.5 points). */
static cJSON *defaults_run(const char *arch)
{
    char report[400], name[64];
    snprintf(name, sizeof name, "%s-defaults", arch);
    snprintf(report, sizeof report, "%s/%s.json", dir, name);
    const char *args[] = {"train", "--arch", arch, "--workers", "4", "--report", report, NULL};
    return cli_Report(dir, cli_Run(dir, 1500, args), name, report);
}

static void mlless_half_the_bytes_of_spirt(void **state)
{
    (void)state;
    cJSON *sp = defaults_run("spirt"), *ml = defaults_run("mlless");
    const cJSON *dsp = cJSON_GetObjectItem(sp, "details"), *dml = cJSON_GetObjectItem(ml, "details");
    double bsp = cli_Num(dsp, "bytes_per_worker_per_iteration");
    double bml = cli_Num(dml, "bytes_per_worker_per_iteration");
    double asp = cli_Num(sp, "test_accuracy"), aml = cli_Num(ml, "test_accuracy");
    print_message("defaults: spirt %.0f bytes/worker/iteration, accuracy %.4f; mlless %.0f "
                  "(%.2fx), accuracy %.4f\n", bsp, asp, bml, bml / bsp, aml);
    assert_true(bsp > 0 && bml > 0);
    assert_true(bml <= 0.5 * bsp);
    assert_true(aml >= asp - 0.015);
    mlless_epoch_iters = cli_Num(ml, "iterations");
    mlless_epoch_acc = aml;
    cJSON_Delete(sp);
    cJSON_Delete(ml);
}

/* --target-loss: the supervisor stops every worker once the mean loss has
 * stayed below it for MLLESS_STOP_STEPS iterations in a row - well before
 * the epoch ends, not before that many iterations. */
static void mlless_stops_at_the_target_loss(void **state)
{
    (void)state;
    char report[400];
    snprintf(report, sizeof report, "%s/mlless-target.json", dir);
    const char *args[] = {"train", "--arch", "mlless", "--workers", "4", "--target-loss", "0.6",
                          "--report", report, NULL};
    cJSON *r = cli_Report(dir, cli_Run(dir, 600, args), "mlless-target", report);
    double iters = cli_Num(r, "iterations"), per_epoch = mlless_epoch_iters;
    assert_true(per_epoch > 0); /* mlless_half_the_bytes_of_spirt ran the epoch */
    print_message("mlless --target-loss 0.6: stopped after %.0f of %.0f iterations\n", iters,
                  per_epoch);
    assert_true(iters >= MLLESS_STOP_STEPS && iters < per_epoch);
    cJSON_Delete(r);
}

/* --scale-in on three epochs: the auto-tuner removes at least one worker,
 * the survivors merge its model and re-stride the data, and the accuracy
 * is that of the same run without scale-in (1.5 points). */
static cJSON *three_epochs(const char *name, const char *scale_in)
{
    char report[400];
    snprintf(report, sizeof report, "%s/%s.json", dir, name);
    const char *args[] = {"train", "--arch", "mlless", "--workers", "4", "--epochs", "3",
                          "--report", report, scale_in, NULL};
    return cli_Report(dir, cli_Run(dir, 1500, args), name, report);
}

static void mlless_scale_in_keeps_accuracy(void **state)
{
    (void)state;
    cJSON *all = three_epochs("mlless-3", NULL), *in = three_epochs("mlless-3-scale-in",
                                                                    "--scale-in");
    const cJSON *left = cJSON_GetObjectItem(cJSON_GetObjectItem(in, "details"), "live_at_end");
    double a_all = cli_Num(all, "test_accuracy"), a_in = cli_Num(in, "test_accuracy");
    print_message("mlless 3 epochs: accuracy %.4f with 4 workers, %.4f with --scale-in (%d "
                  "left)\n", a_all, a_in, cJSON_GetArraySize(left));
    assert_true(cJSON_GetArraySize(left) >= 1 && cJSON_GetArraySize(left) < WORKERS);
    assert_int_equal(cli_Num(in, "iterations"), cli_Num(all, "iterations"));
    assert_true(a_in >= a_all - 0.015);
    cJSON_Delete(all);
    cJSON_Delete(in);
}

/* --slack 2: workers may run two iterations ahead of the slowest; the
 * epoch still ends in step and trains as the synchronous run does. */
static void mlless_with_slack_trains(void **state)
{
    (void)state;
    assert_true(mlless_epoch_acc > 0); /* mlless_half_the_bytes_of_spirt ran */
    char report[400];
    snprintf(report, sizeof report, "%s/mlless-slack.json", dir);
    const char *args[] = {"train", "--arch", "mlless", "--workers", "4", "--slack", "2",
                          "--report", report, NULL};
    cJSON *r = cli_Report(dir, cli_Run(dir, 600, args), "mlless-slack", report);
    double acc = cli_Num(r, "test_accuracy");
    print_message("mlless --slack 2: accuracy %.4f (synchronous %.4f)\n", acc, mlless_epoch_acc);
    assert_true(acc >= mlless_epoch_acc - 0.015);
    assert_int_equal(cli_Num(r, "iterations"), mlless_epoch_iters);
    cJSON_Delete(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(single_reference),
        cmocka_unit_test(spirt_reference),
        cmocka_unit_test(all_reduce_4_workers),
        cmocka_unit_test(scatter_reduce_4_workers),
        cmocka_unit_test(mlless_4_workers),
        cmocka_unit_test(mlless_half_the_bytes_of_spirt),
        cmocka_unit_test(mlless_stops_at_the_target_loss),
        cmocka_unit_test(mlless_scale_in_keeps_accuracy),
        cmocka_unit_test(mlless_with_slack_trains),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
