/* ctest-label: unit (starts no server) */
/* test_fn_footprint.c - a function binary loads only the libraries its step
 * calls: a step that does no linear algebra never maps OpenBLAS (nor starts
 * its threads), while the gradient does. Checked in /proc/PID/maps of a
 * running function. (Only when the functions were linked with lld: GNU ld
 * keeps the libraries that code it discards names.) */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"

/* 1 if the running function of `step` maps a file whose name holds `lib`. */
static int maps_Library(const char *step, const char *lib)
{
    char dir[] = "/tmp/spirt-footprint-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char log[128], e_port[32], path[64], line[512];
    snprintf(log, sizeof log, "%s/fn.log", dir);
    int port = fx_FreePort();
    snprintf(e_port, sizeof e_port, "PORT=%d", port);
    char *env[] = {e_port, "SPIRT_AUTH=off", "SPIRT_BIND=127.0.0.1", NULL};
    char bin[64];
    snprintf(bin, sizeof bin, "spirt-fn-%s", step);
    char *argv[] = {(char *)fx_BinPath(bin), NULL};
    pid_t pid = fx_Spawn(argv, env, log);
    assert_true(pid > 0);
    assert_int_equal(fx_WaitPort(port, 10000), 0);
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int found = 0;
    while (fgets(line, sizeof line, f))
        found |= strstr(line, lib) != NULL;
    fclose(f);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    unlink(log);
    rmdir(dir);
    return found;
}

static void no_blas_without_linear_algebra(void **state)
{
    (void)state;
#if !SPIRT_FN_GC_LIBS
    skip();
#endif
    static const char *const steps[] = {"notify", "barrier", "aggregate", "average",
                                        "update", "minibatch"};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (maps_Library(steps[i], "libopenblas"))
            fail_msg("spirt-fn-%s maps libopenblas", steps[i]);
        if (maps_Library(steps[i], "libgfortran"))
            fail_msg("spirt-fn-%s maps libgfortran", steps[i]);
    }
}

static void blas_where_it_computes(void **state)
{
    (void)state;
    assert_true(maps_Library("gradient", "libopenblas"));
    assert_true(maps_Library("evaluate", "libopenblas"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_blas_without_linear_algebra),
        cmocka_unit_test(blas_where_it_computes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
