/* ctest-label: unit (starts no server) */
/* test_fn_footprint.c - a function binary loads only the libraries its step
 * calls: a step that does no linear algebra never maps OpenBLAS (nor starts
 * its threads), one that never synchronizes maps no libnats and does not
 * make /readyz wait for NATS, while the gradient maps OpenBLAS and notify
 * waits for NATS. Checked in /proc/PID/maps and /readyz of running
 * functions. (The library checks only when the functions were linked with
 * lld: GNU ld keeps the libraries that code it discards names.) */
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
#include "runtime/http_client.h"

typedef struct {
    char dir[64], log[128];
    pid_t pid;
    int port;
} fn_proc;

/* Starts spirt-fn-<step> with auth off and, given, a NATS URL nothing
 * listens on; waits until it listens. */
static void fn_Start(fn_proc *f, const char *step, int with_nats)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/spirt-footprint-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->log, sizeof f->log, "%s/fn.log", f->dir);
    f->port = fx_FreePort();
    char e_port[32], e_nats[64], bin[64];
    snprintf(e_port, sizeof e_port, "PORT=%d", f->port);
    snprintf(e_nats, sizeof e_nats, "SPIRT_NATS_URL=nats://127.0.0.1:%d", fx_FreePort());
    snprintf(bin, sizeof bin, "spirt-fn-%s", step);
    char *env[] = {e_port, "SPIRT_AUTH=off", "SPIRT_BIND=127.0.0.1",
                   "SPIRT_REDIS_TIMEOUT_MS=300", with_nats ? e_nats : NULL, NULL};
    char *argv[] = {(char *)fx_BinPath(bin), NULL};
    f->pid = fx_Spawn(argv, env, f->log);
    assert_true(f->pid > 0);
    assert_int_equal(fx_WaitPort(f->port, 10000), 0);
}

static void fn_Stop(fn_proc *f)
{
    int st;
    kill(f->pid, SIGTERM);
    waitpid(f->pid, &st, 0);
    unlink(f->log);
    rmdir(f->dir);
}

/* 1 if the process maps a file whose name holds `lib`. */
static int maps_Library(const fn_proc *f, const char *lib)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)f->pid);
    FILE *m = fopen(path, "r");
    assert_non_null(m);
    int found = 0;
    while (fgets(line, sizeof line, m))
        found |= strstr(line, lib) != NULL;
    fclose(m);
    return found;
}

static int step_Maps(const char *step, const char *lib)
{
    fn_proc f;
    fn_Start(&f, step, 0);
    int found = maps_Library(&f, lib);
    fn_Stop(&f);
    return found;
}

static int readyz_Status(const fn_proc *f)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", f->port);
    http_response r = {0};
    assert_int_equal(http_Get(url, NULL, 10000, &r), SP_OK);
    int code = r.status;
    http_ResponseFree(&r);
    return code;
}

static void libraries_only_where_called(void **state)
{
    (void)state;
#if !SPIRT_FN_GC_LIBS
    skip();
#endif
    static const struct {
        const char *step;
        int blas, nats;
    } steps[] = {
        {"notify", 0, 1}, {"barrier", 0, 1}, {"aggregate", 0, 0}, {"average", 0, 0},
        {"update", 0, 0}, {"minibatch", 0, 0}, {"gradient", 1, 0}, {"evaluate", 1, 0},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        fn_proc f;
        fn_Start(&f, steps[i].step, 0);
        int blas = maps_Library(&f, "libopenblas"), fortran = maps_Library(&f, "libgfortran");
        int nats = maps_Library(&f, "libnats");
        fn_Stop(&f);
        if (blas != steps[i].blas || fortran != steps[i].blas)
            fail_msg("spirt-fn-%s %s OpenBLAS", steps[i].step, blas ? "maps" : "does not map");
        if (nats != steps[i].nats)
            fail_msg("spirt-fn-%s %s libnats", steps[i].step, nats ? "maps" : "does not map");
    }
}

static void blas_where_it_computes(void **state)
{
    (void)state;
    assert_true(step_Maps("gradient", "libopenblas"));
}

/* A step that never synchronizes is ready without NATS; one that does is
 * not ready while its NATS server does not answer. */
static void readiness_waits_for_nats_where_used(void **state)
{
    (void)state;
    fn_proc f;
    fn_Start(&f, "aggregate", 1);
    assert_int_equal(readyz_Status(&f), 200);
    fn_Stop(&f);
    fn_Start(&f, "notify", 1);
    assert_int_equal(readyz_Status(&f), 503);
    fn_Stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(libraries_only_where_called),
        cmocka_unit_test(blas_where_it_computes),
        cmocka_unit_test(readiness_waits_for_nats_where_used),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
