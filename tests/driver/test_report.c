/* ctest-lock: machine */
/* test_report.c - report fields the benchmarks read: the test-accuracy
 * points --eval-every adds to the history (single and distributed), and
 * details.cpu, the CPU of every process of a local run by kind (the
 * driver's alone against running services). Short runs on the first few
 * thousand Fashion-MNIST images. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cli.h"
#include "fixture.h"

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

/* `spirt train` with the common short-run settings plus extra (NULL-ended);
 * returns its report. */
static cJSON *train(const char *name, const char *const *extra)
{
    char report[400];
    snprintf(report, sizeof report, "%s/%s.json", dir, name);
    const char *args[40] = {"train", "--model", "mlp", "--batch", "32", "--lr", "0.05",
                            "--train-samples", "4000", "--test-samples", "1000",
                            "--report", report};
    int n = 13;
    for (int i = 0; extra[i] && n < 39; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    return cli_Report(dir, cli_Run(dir, 600, args), name, report);
}

/* The history's points with a test accuracy: their count, and each one's
 * iteration must be a multiple of every (or the last point's); times rise. */
static int accuracy_points(const cJSON *r, long every, long last)
{
    const cJSON *h = cJSON_GetObjectItem(r, "history");
    assert_true(cJSON_IsArray(h));
    int n = 0;
    double t = -1;
    for (const cJSON *p = h->child; p; p = p->next) {
        if (!cJSON_GetObjectItem(p, "test_accuracy"))
            continue;
        long it = (long)cli_Num(p, "iteration");
        assert_true(it == last || (every > 0 && it % every == 0));
        assert_true(cli_Num(p, "t") >= t);
        assert_true(cli_Num(p, "test_accuracy") > 0);
        t = cli_Num(p, "t");
        n++;
    }
    return n;
}

static void eval_every_adds_points_single(void **state)
{
    (void)state;
    const char *plain[] = {"--arch", "single", NULL};
    cJSON *a = train("single", plain);
    const char *every[] = {"--arch", "single", "--eval-every", "40", NULL};
    cJSON *b = train("single-every", every);
    long iters = (long)cli_Num(b, "iterations"); /* 4000 / 32 = 125 */
    assert_int_equal(iters, 125);
    assert_int_equal(accuracy_points(a, 0, iters), 1);
    assert_int_equal(accuracy_points(b, 40, iters), 1 + 3); /* 40, 80, 120 and the end */
    /* Evaluation is not training time: the same training, about the same time. */
    assert_true(cli_Num(b, "train_seconds") < 3 * cli_Num(a, "train_seconds") + 0.5);
    assert_true(fabs(cli_Num(a, "test_accuracy") - cli_Num(b, "test_accuracy")) < 1e-6);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void eval_every_is_checked(void **state)
{
    (void)state;
    const char *args[] = {"train", "--eval-every", "-1", NULL};
    assert_int_equal(cli_Run(dir, 30, args), 2);
    assert_non_null(strstr(cli_Log(dir), "--eval-every"));
}

/* details.cpu: every part positive where that kind of process ran, the
 * parts add up to the total, set-up and whole run as large as they must. */
static void check_cpu(const cJSON *r, int function_processes)
{
    const cJSON *c = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "details"), "cpu");
    assert_non_null(c);
    assert_non_null(strstr(cJSON_GetObjectItem(c, "scope")->valuestring, "local"));
    const char *parts[] = {"driver", "functions", "redis", "nats"};
    double sum = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        double v = cli_Num(c, parts[i]);
        assert_false(isnan(v));
        if (strcmp(parts[i], "functions") == 0 && !function_processes)
            assert_true(v == 0);
        else if (strcmp(parts[i], "nats") != 0) /* nats-server may idle below a clock tick */
            assert_true(v > 0);
        sum += v;
    }
    double total = cli_Num(c, "total"), iters = cli_Num(c, "iterations");
    print_message("cpu per iteration: total %.2f ms (driver %.2f, functions %.2f, redis %.2f, "
                  "nats %.2f); set-up %.0f ms, whole run %.0f ms\n", total,
                  cli_Num(c, "driver"), cli_Num(c, "functions"), cli_Num(c, "redis"),
                  cli_Num(c, "nats"), cli_Num(c, "setup_ms"), cli_Num(c, "whole_run_ms"));
    assert_true(fabs(sum - total) <= 1e-9 * total);
    assert_true(iters == cli_Num(r, "iterations"));
    assert_true(cli_Num(c, "setup_ms") > 0);
    assert_true(fabs(cli_Num(c, "whole_run_ms") - cli_Num(c, "setup_ms") - total * iters) <
                1e-6 * cli_Num(c, "whole_run_ms"));
}

static void distributed_eval_every_and_cpu(void **state)
{
    (void)state;
    const char *args[] = {"--arch", "spirt", "--workers", "2", "--eval-every", "20", NULL};
    cJSON *r = train("spirt-http", args);
    long iters = (long)cli_Num(r, "iterations"); /* 4000 / 2 / 32 = 62 */
    assert_int_equal(iters, 62);
    assert_int_equal(accuracy_points(r, 20, iters), 1 + 3); /* 20, 40, 60 and the end */
    check_cpu(r, 1);
    cJSON_Delete(r);
}

static void inproc_cpu_has_no_function_processes(void **state)
{
    (void)state;
    const char *args[] = {"--arch", "spirt", "--workers", "2", "--transport", "inproc", NULL};
    cJSON *r = train("spirt-inproc", args);
    check_cpu(r, 0);
    cJSON_Delete(r);
}

/* Against running services (here: fixtures) the processes are not the
 * driver's to read: details.cpu has the driver only, and says so. */
static void cluster_cpu_is_the_driver_only(void **state)
{
    (void)state;
    fx_server peer[2], shared, nats;
    assert_int_equal(fx_StartRedis(&peer[0], "report-pw", 1, 0), 0);
    assert_int_equal(fx_StartRedis(&peer[1], "report-pw", 1, 0), 0);
    assert_int_equal(fx_StartRedis(&shared, "report-pw", 0, 0), 0);
    assert_int_equal(fx_StartNats(&nats, "spirt", "report-nats-pw"), 0);
    char peers[128], shared_addr[64], nats_url[64], report[400], log[400];
    snprintf(peers, sizeof peers, "127.0.0.1:%d,127.0.0.1:%d", peer[0].port, peer[1].port);
    snprintf(shared_addr, sizeof shared_addr, "127.0.0.1:%d", shared.port);
    snprintf(nats_url, sizeof nats_url, "nats://127.0.0.1:%d", nats.port);
    snprintf(report, sizeof report, "%s/cluster.json", dir);
    snprintf(log, sizeof log, "%s/cluster.log", dir);
    const char *args[] = {"train", "--arch", "spirt", "--workers", "2", "--transport", "inproc",
                          "--train-samples", "2000", "--test-samples", "500", "--batch", "32",
                          "--peers", peers, "--shared-redis", shared_addr, "--nats", nats_url,
                          "--job", "report-cpu", "--report", report, "--quiet", NULL};
    char *env[] = {"SPIRT_REDIS_PASSWORD=report-pw", "SPIRT_NATS_USER=spirt",
                   "SPIRT_NATS_PASSWORD=report-nats-pw", NULL};
    int rc = cli_WaitExit(cli_Spawn(log, env, args), 300);
    fx_Stop(&peer[0]);
    fx_Stop(&peer[1]);
    fx_Stop(&shared);
    fx_Stop(&nats);
    assert_int_equal(rc, 0);
    cJSON *r = cli_ReadJson(report);
    assert_non_null(r);
    const cJSON *c = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "details"), "cpu");
    assert_non_null(c);
    assert_string_equal(cJSON_GetObjectItem(c, "scope")->valuestring, "driver only");
    assert_true(cli_Num(c, "driver") > 0);
    assert_true(cli_Num(c, "total") == cli_Num(c, "driver"));
    assert_null(cJSON_GetObjectItem(c, "functions"));
    assert_null(cJSON_GetObjectItem(c, "redis"));
    cJSON_Delete(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(eval_every_adds_points_single),
        cmocka_unit_test(eval_every_is_checked),
        cmocka_unit_test(distributed_eval_every_and_cpu),
        cmocka_unit_test(inproc_cpu_has_no_function_processes),
        cmocka_unit_test(cluster_cpu_is_the_driver_only),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
