/* ctest-label: unit (starts no server) */
/* test_cli.c - the `spirt` command as a user meets it: help, bad options,
 * options that do not apply to the architecture, the one exit-status scheme
 * (2: fix the command line, found before anything runs; 1: it failed), and
 * a short single-process training that writes its report. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "cli.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    cli_TempDir(dir, sizeof dir);
    return dir[0] ? 0 : -1;
}

static void help_exits_zero_and_lists_options(void **state)
{
    (void)state;
    const char *top[] = {"--help", NULL};
    assert_int_equal(cli_Run(dir, 30, top), 0);
    assert_non_null(strstr(cli_Log(dir), "train"));
    const char *train[] = {"train", "--help", NULL};
    assert_int_equal(cli_Run(dir, 30, train), 0);
    const char *log = cli_Log(dir);
    const char *expected[] = {"--model", "--hidden", "--epochs", "--batch", "--lr", "--momentum",
                              "--optimizer", "--seed", "--dataset", "--report", "--arch",
                              "Exit status", "[spirt]", "[mlless]", "[distributed]"};
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        assert_non_null(strstr(log, expected[i]));
    assert_int_equal(cli_Run(dir, 30, top), 0);
    assert_non_null(strstr(cli_Log(dir), "Exit status"));
}

static void bad_options_exit_two_with_a_message(void **state)
{
    (void)state;
    const char *unknown[] = {"train", "--no-such-option", NULL};
    assert_int_equal(cli_Run(dir, 30, unknown), 2);
    assert_non_null(strstr(cli_Log(dir), "--no-such-option"));
    const char *bad_lr[] = {"train", "--lr", "fast", NULL};
    assert_int_equal(cli_Run(dir, 30, bad_lr), 2);
    assert_non_null(strstr(cli_Log(dir), "--lr"));
    const char *bad_model[] = {"train", "--model", "transformer", NULL};
    assert_int_equal(cli_Run(dir, 30, bad_model), 2);
    const char *missing[] = {"train", "--epochs", NULL};
    assert_int_equal(cli_Run(dir, 30, missing), 2);
    const char *negative[] = {"train", "--batch", "-3", NULL};
    assert_int_equal(cli_Run(dir, 30, negative), 2);
    const char *command[] = {"frobnicate", NULL};
    assert_int_equal(cli_Run(dir, 30, command), 2);
}

static void missing_dataset_is_a_clear_error(void **state)
{
    (void)state;
    const char *args[] = {"train", "--dataset", "/nonexistent/data.csv", NULL};
    assert_int_equal(cli_Run(dir, 30, args), 1); /* a data error, not bad usage */
    assert_non_null(strstr(cli_Log(dir), "/nonexistent/data.csv"));
}

/* Runs spirt with args (NULL-terminated); expects exit status `rc` and every
 * one of `want` (NULL-terminated) in the output. */
static void expect(int rc, const char *const *args, const char *const *want)
{
    char log_path[400];
    snprintf(log_path, sizeof log_path, "%s/spirt.log", dir);
    unlink(log_path); /* the log collects every run: look at this one only */
    int got = cli_Run(dir, 120, args);
    const char *log = cli_Log(dir);
    int ok = got == rc;
    for (int i = 0; want[i]; i++)
        ok = ok && strstr(log, want[i]);
    if (!ok)
        print_error("exit %d, wanted %d and the words below in:\n%s\n", got, rc, log);
    assert_int_equal(got, rc);
    for (int i = 0; want[i]; i++)
        assert_non_null(strstr(log, want[i]));
}

static void options_that_do_not_apply_are_refused(void **state)
{
    (void)state;
    struct {
        const char *args[12];
        const char *want[3];
    } cases[] = {
        {{"train", "--workers", "4", "--arch", "single"}, {"--workers", "--arch single"}},
        {{"train", "--aggregator", "krum", "--arch", "single"}, {"--aggregator", "--arch single"}},
        {{"train", "--arch", "spirt", "--scale-in"}, {"--scale-in", "--arch spirt"}},
        {{"train", "--arch", "mlless", "--heartbeat-timeout", "500"},
         {"--heartbeat-timeout", "--arch mlless"}},
        {{"train", "--arch", "all-reduce", "--kill-peer", "0"}, {"--kill-peer", "--arch all-reduce"}},
        {{"train", "--significance", "0.1"}, {"--significance", "--arch single"}},
        {{"train", "--arch", "spirt", "--slack", "1"}, {"--slack", "--arch spirt"}},
        {{"train", "--arch", "mlless", "--slack", "2", "--scale-in"}, {"--slack", "--scale-in"}},
        {{"train", "--arch", "mlless", "--slack", "65"}, {"--slack", "65"}},
        {{"train", "--arch", "spirt", "--transport", "inproc", "--functions", "http://f/{step}"},
         {"--functions", "--transport inproc"}},
        {{"compare", "--report", "r.json"}, {"--report", "compare"}},
        {{"compare", "--archs", "spirt,all-reduce", "--scale-in"}, {"--scale-in", "--archs"}},
        {{"compare", "--arch", "spirt"}, {"--arch", "compare"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        expect(2, cases[i].args, cases[i].want);
}

/* Running services' credentials may come as SPIRT_<NAME>_FILE (a mounted
 * Secret): a file that cannot be used, or a secret given both ways, is
 * refused before anything is connected to. */
static void secret_files_are_checked_before_training(void **state)
{
    (void)state;
    const char *args[] = {"train", "--arch", "spirt", "--workers", "2", "--transport", "inproc",
                          "--peers", "127.0.0.1:1,127.0.0.1:2", "--shared-redis", "127.0.0.1:3",
                          "--nats", "nats://127.0.0.1:4", NULL};
    char missing[400];
    snprintf(missing, sizeof missing, "%s/no-such-secret", dir);
    setenv("SPIRT_REDIS_PASSWORD_FILE", missing, 1);
    const char *want_missing[] = {"SPIRT_REDIS_PASSWORD_FILE", missing, NULL};
    expect(2, args, want_missing);
    unsetenv("SPIRT_REDIS_PASSWORD_FILE");
    setenv("SPIRT_NATS_PASSWORD", "x", 1);
    setenv("SPIRT_NATS_PASSWORD_FILE", missing, 1);
    const char *want_both[] = {"SPIRT_NATS_PASSWORD", "not both", NULL};
    expect(2, args, want_both);
    unsetenv("SPIRT_NATS_PASSWORD");
    unsetenv("SPIRT_NATS_PASSWORD_FILE");
}

/* spirt compare's own values: refused before anything runs, and nothing
 * is written (not even the --out dir). */
static void compare_bad_values_exit_two_and_write_nothing(void **state)
{
    (void)state;
    char out[400], long_job[80];
    snprintf(out, sizeof out, "%s/cmp-out", dir);
    memset(long_job, 'j', 62);
    long_job[62] = 0;
    struct {
        const char *args[8];
        const char *want[3];
    } cases[] = {
        {{"compare", "--price-redis-hour", "-0.5"}, {"--price-redis-hour", "non-negative"}},
        {{"compare", "--price-nats-hour", "x"}, {"--price-nats-hour", "non-negative"}},
        {{"compare", "--price-vm-hour", "-1"}, {"--price-vm-hour", "non-negative"}},
        {{"compare", "--price-gb-second", "nan"}, {"--price-gb-second"}},
        {{"compare", "--target-accuracy", "0"}, {"--target-accuracy", "0 < A <= 1"}},
        {{"compare", "--target-accuracy", "1.01"}, {"--target-accuracy", "0 < A <= 1"}},
        {{"compare", "--target-accuracy", "-0.2"}, {"--target-accuracy"}},
        {{"compare", "--target-rmse", "0.1"}, {"--target-rmse"}},
        {{"compare", "--no-such-option"}, {"--no-such-option"}},
        {{"compare", "--archs", "spirt,all-reduce,spirt"}, {"--archs", "twice"}},
        {{"compare", "--job", long_job}, {"--job", "too long"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int n = 0;
        while (cases[i].args[n])
            n++;
        cases[i].args[n] = "--out";
        cases[i].args[n + 1] = out;
        expect(2, cases[i].args, cases[i].want);
        assert_int_equal(access(out, F_OK), -1);
    }
}

static void the_environment_is_never_refused(void **state)
{
    (void)state;
    /* A Job's environment serves every architecture: these do not apply to
     * --arch single, and are not refused there (nor used: one worker). */
    setenv("SPIRT_WORKERS", "4", 1);
    setenv("SPIRT_AGGREGATOR", "krum", 1);
    setenv("SPIRT_SCALE_IN", "1", 1);
    const char *args[] = {"train", "--arch", "single", "--model", "logreg", "--train-samples",
                          "1000", "--test-samples", "200", NULL};
    const char *want[] = {"1 worker(s)", NULL};
    expect(0, args, want);
    unsetenv("SPIRT_WORKERS");
    unsetenv("SPIRT_AGGREGATOR");
    unsetenv("SPIRT_SCALE_IN");
}

static void report_path_is_checked_before_training(void **state)
{
    (void)state;
    char missing[400];
    snprintf(missing, sizeof missing, "%s/no/such/dir/report.json", dir);
    const char *args[] = {"train", "--model", "logreg", "--report", missing, NULL};
    const char *want[] = {missing, "cannot write there", NULL};
    expect(2, args, want);
    assert_null(strstr(cli_Log(dir), "epoch")); /* nothing trained */
    const char *is_dir[] = {"train", "--model", "logreg", "--report", dir, NULL};
    const char *want_dir[] = {dir, "is a directory", NULL};
    expect(2, is_dir, want_dir);
}

/* Data that cannot be trained on is a failed run (1), like any other. */
static void data_errors_exit_one(void **state)
{
    (void)state;
    char tiny[400];
    snprintf(tiny, sizeof tiny, "%s/tiny.csv", dir);
    FILE *f = fopen(tiny, "w");
    assert_non_null(f);
    fputs("1,0\n2,1\n3,0\n", f);
    fclose(f);
    const char *few[] = {"train", "--dataset", tiny, NULL};
    const char *want_few[] = {tiny, "too few", NULL};
    expect(1, few, want_few);

    /* a LibSVM file whose gzip stream was cut short */
    char full[400], cut[400];
    snprintf(full, sizeof full, "%s/full.svm.gz", dir);
    snprintf(cut, sizeof cut, "%s/cut.svm.gz", dir);
    gzFile gz = gzopen(full, "wb");
    assert_non_null(gz);
    for (int i = 0; i < 3000; i++)
        gzprintf(gz, "%d 1:%d 2:%d\n", i % 2, i % 89, i % 7);
    gzclose(gz);
    static char bytes[1 << 16];
    f = fopen(full, "rb");
    assert_non_null(f);
    size_t n = fread(bytes, 1, sizeof bytes, f);
    fclose(f);
    f = fopen(cut, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n / 2, f), n / 2);
    fclose(f);
    const char *trunc[] = {"train", "--dataset", cut, "--model", "logreg", NULL};
    const char *want_trunc[] = {cut, "truncated", NULL};
    expect(1, trunc, want_trunc);
}

static void single_training_reports_every_field(void **state)
{
    (void)state;
    char report[400];
    snprintf(report, sizeof report, "%s/report.json", dir);
    const char *args[] = {"train", "--arch", "single", "--model", "logreg", "--epochs", "2",
                          "--train-samples", "6000", "--test-samples", "2000",
                          "--batch", "32", "--lr", "0.1", "--report", report, NULL};
    assert_int_equal(cli_Run(dir, 300, args), 0);
    assert_non_null(strstr(cli_Log(dir), "test accuracy"));
    cJSON *r = cli_ReadJson(report);
    assert_non_null(r);
    const char *fields[] = {"workers", "epochs", "batch", "lr", "train_seconds",
                            "test_accuracy", "final_loss", "samples_per_second"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        assert_false(isnan(cli_Num(r, fields[i])));
    assert_string_equal(cJSON_GetObjectItem(r, "arch")->valuestring, "single");
    assert_string_equal(cJSON_GetObjectItem(r, "model")->valuestring, "logreg");
    assert_int_equal((int)cli_Num(r, "epochs"), 2);
    /* Full batches only, as the distributed architectures run them: 187 of 32. */
    assert_int_equal((int)cli_Num(r, "samples"), 2 * (6000 / 32) * 32);
    /* Softmax regression on 6000 Fashion-MNIST images learns well past chance. */
    assert_true(cli_Num(r, "test_accuracy") > 0.70);
    assert_true(cli_Num(r, "final_loss") < 1.0);
    cJSON_Delete(r);
}

static void environment_configures_and_command_line_wins(void **state)
{
    (void)state;
    char report[400];
    snprintf(report, sizeof report, "%s/env.json", dir);
    setenv("SPIRT_EPOCHS", "3", 1);
    setenv("SPIRT_BATCH", "100", 1);
    const char *args[] = {"train", "--model", "logreg", "--epochs", "1", "--train-samples",
                          "1000", "--test-samples", "200", "--report", report, NULL};
    int rc = cli_Run(dir, 120, args);
    unsetenv("SPIRT_EPOCHS");
    unsetenv("SPIRT_BATCH");
    assert_int_equal(rc, 0);
    cJSON *r = cli_ReadJson(report);
    assert_non_null(r);
    assert_int_equal((int)cli_Num(r, "epochs"), 1);   /* command line wins */
    assert_int_equal((int)cli_Num(r, "batch"), 100);  /* from the environment */
    cJSON_Delete(r);
}

static int teardown(void **state)
{
    (void)state;
    cli_RemoveDir(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(help_exits_zero_and_lists_options),
        cmocka_unit_test(bad_options_exit_two_with_a_message),
        cmocka_unit_test(missing_dataset_is_a_clear_error),
        cmocka_unit_test(options_that_do_not_apply_are_refused),
        cmocka_unit_test(secret_files_are_checked_before_training),
        cmocka_unit_test(compare_bad_values_exit_two_and_write_nothing),
        cmocka_unit_test(the_environment_is_never_refused),
        cmocka_unit_test(report_path_is_checked_before_training),
        cmocka_unit_test(data_errors_exit_one),
        cmocka_unit_test(single_training_reports_every_field),
        cmocka_unit_test(environment_configures_and_command_line_wins),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
