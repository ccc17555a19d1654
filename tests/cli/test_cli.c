/* ctest-label: unit (starts no server) */
/* test_cli.c - the `spirt` command as a user meets it: help, bad options,
 * and a short single-process training that writes its report. */
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
                              "--optimizer", "--seed", "--dataset", "--report", "--arch"};
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        assert_non_null(strstr(log, expected[i]));
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
    int rc = cli_Run(dir, 30, args);
    assert_true(rc == 1 || rc == 2);
    assert_non_null(strstr(cli_Log(dir), "/nonexistent/data.csv"));
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
    assert_int_equal((int)cli_Num(r, "samples"), 12000);
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
        cmocka_unit_test(single_training_reports_every_field),
        cmocka_unit_test(environment_configures_and_command_line_wins),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
