/* ctest-label: unit (starts no server) */
/* test_secret_env.c - a secret given as NAME or as NAME_FILE: trimmed,
 * bounded, never both, and nothing changed when one of several files is
 * wrong (the runtime and the driver both read them this way). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/secret_env.h"

#define VAR_A "SPIRT_TEST_SECRET_A"
#define VAR_B "SPIRT_TEST_SECRET_B"

static char g_dir[64];

/* Writes len bytes of content to a file in the test's directory; returns its path. */
static const char *file_With(const char *name, const char *content, size_t len)
{
    static char path[2][128];
    static int k;
    char *p = path[k++ % 2];
    snprintf(p, sizeof path[0], "%s/%s", g_dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, len, f), len);
    fclose(f);
    return p;
}

static void clear(void)
{
    unsetenv(VAR_A);
    unsetenv(VAR_A "_FILE");
    unsetenv(VAR_B);
    unsetenv(VAR_B "_FILE");
}

static void file_is_trimmed(void **state)
{
    (void)state;
    char out[SECRET_MAX + 1];
    const char *p = file_With("a", "\t s3cret-value \n\n", 17);
    assert_int_equal(secret_FromFile(VAR_A, p, out, sizeof out), SP_OK);
    assert_string_equal(out, "s3cret-value");
}

static void bad_files_are_refused_by_name(void **state)
{
    (void)state;
    char out[SECRET_MAX + 1];
    struct {
        const char *content;
        size_t len;
        const char *says;
    } cases[] = {{" \n", 2, "is empty"}, {"ab\001cd", 5, "control characters"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p = file_With("bad", cases[i].content, cases[i].len);
        assert_int_equal(secret_FromFile(VAR_A, p, out, sizeof out), SP_ERR_INVALID);
        assert_non_null(strstr(sp_LastError(), cases[i].says));
        assert_non_null(strstr(sp_LastError(), VAR_A "_FILE"));
    }
    static char big[SECRET_MAX + 1];
    memset(big, 'x', sizeof big);
    assert_int_equal(secret_FromFile(VAR_A, file_With("big", big, sizeof big), out, sizeof out),
                     SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "longer than"));
    /* The longest accepted value still fits. */
    assert_int_equal(secret_FromFile(VAR_A, file_With("max", big, SECRET_MAX), out, sizeof out),
                     SP_OK);
    assert_int_equal(strlen(out), SECRET_MAX);
    assert_int_equal(secret_FromFile(VAR_A, "/nonexistent/secret", out, sizeof out),
                     SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "/nonexistent/secret"));
}

static void value_or_file_but_not_both(void **state)
{
    (void)state;
    char out[SECRET_MAX + 1];
    clear();
    assert_int_equal(secret_Get(VAR_A, out, sizeof out), SP_OK);
    assert_string_equal(out, "");
    setenv(VAR_A, "direct", 1);
    assert_int_equal(secret_Get(VAR_A, out, sizeof out), SP_OK);
    assert_string_equal(out, "direct");
    setenv(VAR_A "_FILE", file_With("a", "from-file\n", 10), 1);
    assert_int_equal(secret_Get(VAR_A, out, sizeof out), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "not both"));
    unsetenv(VAR_A);
    assert_int_equal(secret_Get(VAR_A, out, sizeof out), SP_OK);
    assert_string_equal(out, "from-file");
    clear();
}

static void files_become_the_process_environment(void **state)
{
    (void)state;
    const char *vars[] = {VAR_A, VAR_B};
    clear();
    setenv(VAR_A "_FILE", file_With("a", "alpha\n", 6), 1);
    setenv(VAR_B, "beta", 1);
    assert_int_equal(secret_EnvFromFiles(vars, 2), SP_OK);
    assert_string_equal(getenv(VAR_A), "alpha");
    assert_null(getenv(VAR_A "_FILE"));
    assert_string_equal(getenv(VAR_B), "beta");
    clear();
}

static void one_bad_file_changes_nothing(void **state)
{
    (void)state;
    const char *vars[] = {VAR_A, VAR_B};
    clear();
    const char *good = file_With("a", "alpha", 5);
    setenv(VAR_A "_FILE", good, 1);
    setenv(VAR_B "_FILE", file_With("b", "", 0), 1);
    assert_int_equal(secret_EnvFromFiles(vars, 2), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), VAR_B "_FILE"));
    assert_null(getenv(VAR_A));
    assert_string_equal(getenv(VAR_A "_FILE"), good);
    clear();
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/spirt-secret-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    const char *names[] = {"a", "b", "bad", "big", "max"};
    char p[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", g_dir, names[i]);
        unlink(p);
    }
    return rmdir(g_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(file_is_trimmed),
        cmocka_unit_test(bad_files_are_refused_by_name),
        cmocka_unit_test(value_or_file_but_not_both),
        cmocka_unit_test(files_become_the_process_environment),
        cmocka_unit_test(one_bad_file_changes_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
