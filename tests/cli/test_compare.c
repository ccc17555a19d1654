/* ctest-lock: machine (trains, or times a server) */
/* ctest-label: slow */
/* test_compare.c - `spirt compare` runs the same small job on the four
 * architectures and writes a Markdown table with a row per architecture,
 * the same numbers as valid JSON, and an SVG plot with a line per
 * architecture. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli.h"

static const char *archs[4] = {"spirt", "mlless", "scatter-reduce", "all-reduce"};

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
    for (int i = 0; i < 4; i++) {
        char row[64];
        snprintf(row, sizeof row, "\n| %s |", archs[i]);
        assert_int_equal(count(md, row), 1);
    }
    free(md);
}

static void check_json(const char *out)
{
    char path[512];
    snprintf(path, sizeof path, "%s/compare.json", out);
    cJSON *s = cli_ReadJson(path);
    assert_non_null(s);
    const cJSON *rows = cJSON_GetObjectItem(s, "architectures");
    assert_int_equal(cJSON_GetArraySize(rows), 4);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(s, "runs")), 4);
    assert_int_equal((int)cli_Num(cJSON_GetObjectItem(s, "job"), "workers"), 2);
    for (int i = 0; i < 4; i++) {
        const cJSON *r = cJSON_GetArrayItem(rows, i);
        assert_string_equal(cJSON_GetObjectItem(r, "arch")->valuestring, archs[i]);
        assert_true(cli_Num(r, "epoch_seconds") > 0);
        const char *parts[] = {"compute_seconds", "communication_seconds",
                               "synchronization_seconds", "update_seconds"};
        double sum = 0;
        for (int k = 0; k < 4; k++) {
            assert_true(cli_Num(r, parts[k]) >= 0);
            sum += cli_Num(r, parts[k]);
        }
        assert_true(sum > 0 && cli_Num(r, "compute_seconds") > 0);
        assert_true(cli_Num(r, "bytes_per_worker_per_iteration") > 100000);
        assert_true(cli_Num(r, "test_accuracy") > 0.5 && cli_Num(r, "test_accuracy") <= 1);
        assert_true(cli_Num(r, "invocations") > 0);
        assert_true(cli_Num(r, "gb_seconds") > 0);
        assert_true(cli_Num(r, "cost_usd") > 0);
    }
    cJSON_Delete(s);
}

static void check_svg(const char *out)
{
    char path[512];
    snprintf(path, sizeof path, "%s/compare.svg", out);
    char *svg = read_text(path);
    assert_non_null(svg);
    assert_non_null(strstr(svg, "<svg"));
    assert_non_null(strstr(svg, "</svg>"));
    /* Accuracy and loss panels: two lines per architecture, with points. */
    assert_int_equal(count(svg, "<polyline"), 8);
    assert_int_equal(count(svg, "points=''"), 0);
    assert_int_equal(count(svg, "<"), count(svg, ">"));
    for (int i = 0; i < 4; i++) {
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
                          "4000", "--test-samples", "1000", "--out", out, NULL};
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
