/* ctest-label: unit (starts no server) */
/* test_signals.c - a function process asked to stop always drains and exits
 * 0, however the request to stop arrives: Ctrl-C on a local run delivers
 * SIGINT to the whole process group while the runner sends SIGTERM, and a
 * platform may repeat its SIGTERM. A second signal arriving during the drain
 * must not take the default action (death by signal, exit 128+n). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"

#define ROUNDS 25

/* Exit status, 128+signal when killed, -1 after timeout_ms. */
static int wait_Exit(pid_t pid, int timeout_ms)
{
    int st;
    for (int waited = 0; waited < timeout_ms; waited += 5) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(5000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

static void stop_twice(int first, int second)
{
    char dir[] = "/tmp/spirt-signals-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char log[128], e_port[32];
    snprintf(log, sizeof log, "%s/fn.log", dir);
    int bad = 0;
    for (int i = 0; i < ROUNDS; i++) {
        int port = fx_FreePort();
        snprintf(e_port, sizeof e_port, "PORT=%d", port);
        char *env[] = {e_port, "SPIRT_AUTH=off", "SPIRT_BIND=127.0.0.1", NULL};
        char *argv[] = {(char *)fx_BinPath("spirt-fn-notify"), NULL};
        pid_t pid = fx_Spawn(argv, env, log);
        assert_true(pid > 0);
        assert_int_equal(fx_WaitPort(port, 10000), 0);
        kill(pid, first);
        kill(pid, second);
        int rc = wait_Exit(pid, 10000);
        if (rc != 0)
            print_error("round %d: exit %d\n", i, rc);
        bad += rc != 0;
    }
    unlink(log);
    rmdir(dir);
    assert_int_equal(bad, 0);
}

static void sigint_then_sigterm(void **state)
{
    (void)state;
    stop_twice(SIGINT, SIGTERM);
}

static void sigterm_twice(void **state)
{
    (void)state;
    stop_twice(SIGTERM, SIGTERM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sigint_then_sigterm),
        cmocka_unit_test(sigterm_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
