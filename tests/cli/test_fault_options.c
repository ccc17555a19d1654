/* ctest-label: unit (starts no server) */
/* test_fault_options.c - the fault-tolerance options of `spirt train` are
 * checked before anything starts: a clear message and exit status 2, no
 * servers left behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

static int teardown(void **state)
{
    (void)state;
    cli_RemoveDir(dir);
    return 0;
}

/* Runs `spirt train --arch spirt --workers 3 <extra>`; expects exit 2 and
 * `want` in the output. */
static void refused(const char *const *extra, const char *want)
{
    const char *args[32] = {"train", "--arch", "spirt", "--workers", "3", "--quiet"};
    int n = 6;
    for (int i = 0; extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    int rc = cli_Run(dir, 60, args);
    const char *log = cli_Log(dir);
    if (rc != 2 || !strstr(log, want))
        print_error("exit %d, wanted 2 and \"%s\" in:\n%s\n", rc, want, log);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(log, want));
}

static void kill_peer_out_of_range(void **state)
{
    (void)state;
    const char *a[] = {"--kill-peer", "3", NULL};
    refused(a, "--kill-peer 3: there are only 3 peers");
}

static void restart_needs_a_kill(void **state)
{
    (void)state;
    const char *a[] = {"--restart-after", "1", NULL};
    refused(a, "--restart-after needs --kill-peer");
    const char *b[] = {"--kill-peer", "1", "--restart-after", "-1", NULL};
    refused(b, "--restart-after");
}

static void resume_needs_running_services(void **state)
{
    (void)state;
    const char *a[] = {"--resume", NULL};
    refused(a, "--resume continues a job in running services");
}

static void kill_needs_the_local_runner(void **state)
{
    (void)state;
    const char *a[] = {"--kill-peer", "0", "--transport", "inproc", "--peers",
                       "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3", "--shared-redis", "127.0.0.1:4",
                       "--nats", "nats://127.0.0.1:5", NULL};
    refused(a, "--kill-peer needs a local run");
}

static void heartbeat_timeout_is_checked(void **state)
{
    (void)state;
    const char *a[] = {"--heartbeat-timeout", "-5", NULL};
    refused(a, "--heartbeat-timeout");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kill_peer_out_of_range),
        cmocka_unit_test(restart_needs_a_kill),
        cmocka_unit_test(resume_needs_running_services),
        cmocka_unit_test(kill_needs_the_local_runner),
        cmocka_unit_test(heartbeat_timeout_is_checked),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
