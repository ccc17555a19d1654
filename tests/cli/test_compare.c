/* ctest-lock: machine (trains, or times a server) */
/* ctest-label: slow */
/* test_compare.c - `spirt compare` runs the same small job on the four
 * distributed architectures and `single` and writes a Markdown table with a
 * row per architecture, the same numbers as valid JSON (time to a target
 * accuracy, the cost split), and an SVG plot with a line per architecture
 * in each panel, with test-accuracy points inside the epoch. Each run is on
 * a system of its own: its own job name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "cli.h"

#define N_ARCHS 5
#define TARGET_TEXT "0.7" /* --target-accuracy */
#define TARGET atof(TARGET_TEXT)
static const char *archs[N_ARCHS] = {"spirt", "mlless", "scatter-reduce", "all-reduce", "single"};

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = 0;
    fclose(f);
    return s;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void check_markdown(const char *out)
{
    char path[512];
    snprintf(path, sizeof path, "%s/compare.md", out);
    char *md = read_text(path);
    assert_non_null(md);
    assert_non_null(strstr(md, "| architecture |"));
    assert_non_null(strstr(md, "bytes/worker/iteration"));
    assert_non_null(strstr(md, "time to target (s)"));
    assert_non_null(strstr(md, "| databases (USD) | messaging (USD) |"));
    for (int i = 0; i < N_ARCHS; i++) {
        char row[64];
        snprintf(row, sizeof row, "\n| %s |", archs[i]);
        assert_int_equal(count(md, row), 2); /* the time table and the cost table */
    }
    free(md);
}

/* Whether any point of a run's curve reached the target accuracy. */
static int ever_reached(const cJSON *run)
{
    const cJSON *pt;
    cJSON_ArrayForEach(pt, cJSON_GetObjectItem(run, "history"))
        if (cli_Num(pt, "test_accuracy") >= TARGET)
            return 1;
    return 0;
}

static void check_target(const cJSON *r, const cJSON *run)
{
    const cJSON *secs = cJSON_GetObjectItem(r, "seconds_to_target");
    const cJSON *iters = cJSON_GetObjectItem(r, "iterations_to_target");
    assert_true(cJSON_IsNull(secs) || cJSON_IsNumber(secs));
    assert_int_equal(cJSON_IsNull(secs), cJSON_IsNull(iters));
    assert_int_equal(cJSON_IsNull(secs), !ever_reached(run));
    if (cJSON_IsNumber(secs)) {
        assert_true(secs->valuedouble >= 0 && secs->valuedouble <= cli_Num(run, "train_seconds"));
        assert_true(iters->valuedouble >= 1 && iters->valuedouble <= cli_Num(run, "iterations"));
    }
}

static void check_cost(const cJSON *r, int serverless)
{
    const cJSON *b = cJSON_GetObjectItem(r, "cost_breakdown_usd");
    const char *parts[] = {"functions", "databases", "messaging", "vm"};
    double sum = 0;
    for (int k = 0; k < 4; k++) {
        double v = cli_Num(b, parts[k]);
        assert_true(v >= 0);
        /* serverless: everything but a VM; single: only its VM */
        assert_int_equal(v > 0, (k < 3) == serverless);
        sum += v;
    }
    assert_int_equal(cJSON_GetArraySize(b), 4);
    assert_true(cli_Num(r, "cost_usd") > 0);
    assert_true(fabs(sum - cli_Num(r, "cost_usd")) <= 1e-12 * cli_Num(r, "cost_usd"));
    assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(r, "serverless")), serverless);
}

static void check_json(const char *out)
{
    char path[512];
    snprintf(path, sizeof path, "%s/compare.json", out);
    cJSON *s = cli_ReadJson(path);
    assert_non_null(s);
    const cJSON *rows = cJSON_GetObjectItem(s, "architectures");
    const cJSON *runs = cJSON_GetObjectItem(s, "runs");
    assert_int_equal(cJSON_GetArraySize(rows), N_ARCHS);
    assert_int_equal(cJSON_GetArraySize(runs), N_ARCHS);
    assert_int_equal((int)cli_Num(cJSON_GetObjectItem(s, "job"), "workers"), 2);
    assert_true(cli_Num(cJSON_GetObjectItem(s, "target"), "value") == TARGET);
    for (int i = 0; i < N_ARCHS; i++) {
        const cJSON *r = cJSON_GetArrayItem(rows, i), *run = cJSON_GetArrayItem(runs, i);
        int serverless = strcmp(archs[i], "single") != 0;
        assert_string_equal(cJSON_GetObjectItem(r, "arch")->valuestring, archs[i]);
        assert_true(cli_Num(r, "epoch_seconds") > 0);
        assert_true(cli_Num(r, "test_accuracy") > 0.5 && cli_Num(r, "test_accuracy") <= 1);
        check_target(r, run);
        check_cost(r, serverless);
        /* Each run on its own job name: no run reads another's keys or stream. */
        const char *id = cJSON_GetObjectItem(run, "job_id")->valuestring;
        for (int k = 0; k < i; k++)
            assert_string_not_equal(id, cJSON_GetObjectItem(cJSON_GetArrayItem(runs, k),
                                                            "job_id")->valuestring);
        assert_true(cli_Num(r, "iteration_p50_ms") > 0);
        assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(r, "slow_tail")),
                         cli_Num(r, "iteration_p99_ms") > 5 * cli_Num(r, "iteration_p50_ms"));
        if (!serverless)
            continue;
        const char *parts[] = {"compute_seconds", "communication_seconds",
                               "synchronization_seconds", "update_seconds"};
        double sum = 0;
        for (int k = 0; k < 4; k++) {
            assert_true(cli_Num(r, parts[k]) >= 0);
            sum += cli_Num(r, parts[k]);
        }
        assert_true(sum > 0 && cli_Num(r, "compute_seconds") > 0);
        assert_true(cli_Num(r, "bytes_per_worker_per_iteration") > 100000);
        assert_true(cli_Num(r, "invocations") > 0);
        assert_true(cli_Num(r, "gb_seconds") > 0);
        assert_int_equal((int)cli_Num(r, "redis_instances"), i == 0 ? 2 + 1 : 1);
    }
    cJSON_Delete(s);
}

/* Test-accuracy points of every run (each is plotted over time and over
 * cost); each run has some inside its one epoch (--eval-every's default). */
static int accuracy_points(const char *out)
{
    char path[512];
    snprintf(path, sizeof path, "%s/compare.json", out);
    cJSON *s = cli_ReadJson(path);
    assert_non_null(s);
    int total = 0;
    const cJSON *run;
    cJSON_ArrayForEach(run, cJSON_GetObjectItem(s, "runs")) {
        int n = 0;
        const cJSON *pt;
        cJSON_ArrayForEach(pt, cJSON_GetObjectItem(run, "history"))
            n += cJSON_GetObjectItem(pt, "test_accuracy") != NULL;
        assert_true(n > 2);
        total += n;
    }
    cJSON_Delete(s);
    return total;
}

static void check_svg(const char *out)
{
    char path[512];
    snprintf(path, sizeof path, "%s/compare.svg", out);
    char *svg = read_text(path);
    assert_non_null(svg);
    assert_non_null(strstr(svg, "<svg"));
    assert_non_null(strstr(svg, "</svg>"));
    /* Accuracy over time and cost, loss: three lines per architecture,
     * with points; a dot on each test accuracy in both accuracy panels. */
    assert_int_equal(count(svg, "<polyline"), 3 * N_ARCHS);
    assert_int_equal(count(svg, "<circle"), 2 * accuracy_points(out));
    assert_int_equal(count(svg, ">target " TARGET_TEXT "<"), 2); /* dashed, in both */
    assert_int_equal(count(svg, "points=''"), 0);
    assert_int_equal(count(svg, "<"), count(svg, ">"));
    for (int i = 0; i < N_ARCHS; i++) {
        char legend[64];
        snprintf(legend, sizeof legend, ">%s</text>", archs[i]);
        assert_non_null(strstr(svg, legend));
    }
    free(svg);
}

static void compare_writes_table_json_and_svg(void **state)
{
    (void)state;
    char dir[256], out[400];
    cli_TempDir(dir, sizeof dir);
    assert_true(dir[0] != 0);
    snprintf(out, sizeof out, "%s/cmp", dir);
    const char *args[] = {"compare", "--workers", "2", "--epochs", "1", "--train-samples",
                          "4000", "--test-samples", "1000", "--target-accuracy", TARGET_TEXT,
                          "--out", out, NULL};
    int rc = cli_Run(dir, 900, args);
    if (rc != 0)
        print_error("spirt compare exited %d:\n%s\n", rc, cli_Log(dir));
    assert_int_equal(rc, 0);
    check_markdown(out);
    check_json(out);
    check_svg(out);
    cli_RemoveDir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(compare_writes_table_json_and_svg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
