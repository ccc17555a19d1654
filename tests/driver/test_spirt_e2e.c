/* ctest-label: slow */
/* test_spirt_e2e.c - SPIRT end to end on Fashion-MNIST, as a user runs it:
 * `spirt train --arch spirt` with real redis-servers, nats-server and (for
 * the http transport) every step as its own function process. After one
 * epoch over the whole training set its accuracy must be within 1.5 points
 * of single-process training with the same total batch (workers x
 * minibatches x batch): 4 peers with every step an HTTP function, and 2
 * peers in-process (the other transport, another peer count). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cli.h"

static char dir[256];
static double single_acc[2]; /* by total batch: [0] 256 */

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

static cJSON *train(const char *name, const char *arch, const char *workers, const char *m,
                    const char *batch, const char *transport)
{
    char report[400];
    snprintf(report, sizeof report, "%s/%s.json", dir, name);
    const char *args[32] = {"train", "--arch", arch, "--batch", batch, "--epochs", "1",
                            "--model", "mlp", "--hidden", "128", "--lr", "0.05", "--optimizer",
                            "momentum", "--momentum", "0.5",
                            "--report", report};
    int n = 19;
    if (strcmp(arch, "single") != 0) { /* refused where they do not apply */
        const char *dist[] = {"--workers", workers, "--minibatches", m, "--transport", transport};
        for (size_t i = 0; i < sizeof dist / sizeof dist[0]; i++)
            args[n++] = dist[i];
    }
    args[n] = NULL;
    cJSON *r = cli_Report(dir, cli_Run(dir, 1200, args), name, report);
    return r;
}

static void single_reference(void **state)
{
    (void)state;
    cJSON *r = train("single", "single", "1", "1", "256", "inproc");
    single_acc[0] = cli_Num(r, "test_accuracy");
    print_message("single, batch 256: accuracy %.4f\n", single_acc[0]);
    assert_true(single_acc[0] > 0.80);
    cJSON_Delete(r);
}

static void check_spirt(cJSON *r, int workers, const char *transport)
{
    double acc = cli_Num(r, "test_accuracy");
    print_message("spirt %d peers over %s: accuracy %.4f (single %.4f)\n", workers, transport,
                  acc, single_acc[0]);
    assert_true(fabs(acc - single_acc[0]) <= 0.015);
    assert_int_equal((int)cli_Num(r, "workers"), workers);
    assert_int_equal((int)cli_Num(r, "epochs"), 1);
    const cJSON *d = cJSON_GetObjectItem(r, "details");
    assert_non_null(d);
    assert_string_equal(cJSON_GetObjectItem(d, "transport")->valuestring, transport);
    assert_string_equal(cJSON_GetObjectItem(d, "tensor_math")->valuestring, "in-database");
    assert_true(cli_Num(d, "bytes_per_worker_per_iteration") > 0);
    const cJSON *steps = cJSON_GetObjectItem(d, "steps");
    const char *names[] = {"minibatch", "gradient", "average", "notify", "barrier",
                           "aggregate", "update"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_non_null(cJSON_GetObjectItem(steps, names[i]));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "failed_peers")), 0);
}

static void spirt_4_peers_http(void **state)
{
    (void)state;
    cJSON *r = train("spirt4http", "spirt", "4", "2", "32", "http");
    check_spirt(r, 4, "http");
    cJSON_Delete(r);
}

static void spirt_2_peers_inproc(void **state)
{
    (void)state;
    cJSON *r = train("spirt2inproc", "spirt", "2", "2", "64", "inproc");
    check_spirt(r, 2, "inproc");
    cJSON_Delete(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(single_reference),
        cmocka_unit_test(spirt_4_peers_http),
        cmocka_unit_test(spirt_2_peers_inproc),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
