/* test_runner.c - the local runner leaves nothing behind: after a normal
 * run, after Ctrl-C (SIGINT) mid-run, and after the driver is SIGKILLed, no
 * redis-server, nats-server or function process it started survives, and
 * (except after SIGKILL) its temp dir is gone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli.h"
#include "fixture.h"
#include "procs.h"

static char dir[256];    /* test scratch, also the runner's TMPDIR */
static char tmpdir[300];

static int setup(void **state)
{
    (void)state;
    cli_TempDir(dir, sizeof dir);
    snprintf(tmpdir, sizeof tmpdir, "%s/tmp", dir);
    return dir[0] && mkdir(tmpdir, 0700) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cli_RemoveDir(dir);
    return 0;
}

/* Processes started for this test: servers mention our TMPDIR in their
 * arguments; function processes run our spirt-fn-* binaries. */
static int count_leftovers(void)
{
    char fn_prefix[512];
    snprintf(fn_prefix, sizeof fn_prefix, "%s", fx_BinPath("spirt-fn-"));
    static pid_t pids[32768];
    static char buf[4096];
    int n = px_All(pids, 32768), found = 0;
    for (int i = 0; i < n; i++) {
        if (pids[i] == getpid())
            continue;
        size_t len = px_Read(pids[i], "cmdline", buf, sizeof buf);
        if (strncmp(px_Exe(pids[i]), fn_prefix, strlen(fn_prefix)) == 0 ||
            px_Contains(buf, len, tmpdir))
            found++;
    }
    return found;
}

static int dir_entries(const char *path)
{
    int n = 0;
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    if (d)
        closedir(d);
    return n;
}

static pid_t start_spirt(const char *log)
{
    char env_tmp[400];
    snprintf(env_tmp, sizeof env_tmp, "TMPDIR=%s", tmpdir);
    char *env[] = {env_tmp, NULL};
    const char *args[] = {"train", "--arch", "spirt", "--workers", "2", "--epochs", "50",
                          "--train-samples", "4000", "--test-samples", "500", "--batch", "32",
                          "--sync-timeout", "5000", NULL};
    return cli_Spawn(log, env, args);
}

static void normal_run_cleans_up(void **state)
{
    (void)state;
    setenv("TMPDIR", tmpdir, 1);
    const char *args[] = {"train", "--arch", "spirt", "--workers", "2", "--epochs", "1",
                          "--train-samples", "2000", "--test-samples", "500", "--batch", "32",
                          NULL};
    int rc = cli_Run(dir, 300, args);
    unsetenv("TMPDIR");
    if (rc != 0)
        print_error("%s\n", cli_Log(dir));
    assert_int_equal(rc, 0);
    assert_int_equal(count_leftovers(), 0);
    assert_int_equal(dir_entries(tmpdir), 0);
}

static void ctrl_c_mid_run_cleans_up(void **state)
{
    (void)state;
    char log[400];
    snprintf(log, sizeof log, "%s/sigint.log", dir);
    pid_t pid = start_spirt(log);
    assert_true(pid > 0);
    assert_int_equal(cli_WaitLog(log, "iteration", 120), 0);
    assert_true(count_leftovers() > 0); /* the system really is up */
    kill(pid, SIGINT);
    int rc = cli_WaitExit(pid, 60);
    assert_true(rc != 0 && rc != -1);
    assert_int_equal(count_leftovers(), 0);
    assert_int_equal(dir_entries(tmpdir), 0);
}

static void killed_driver_takes_its_children_along(void **state)
{
    (void)state;
    char log[400];
    snprintf(log, sizeof log, "%s/sigkill.log", dir);
    pid_t pid = start_spirt(log);
    assert_true(pid > 0);
    assert_int_equal(cli_WaitLog(log, "iteration", 120), 0);
    kill(pid, SIGKILL);
    cli_WaitExit(pid, 10);
    /* Children get SIGTERM when the driver dies and drain in-flight requests:
     * a barrier waiting for peers that will never come ends at the job's
     * sync timeout (5 s here), so allow that and then some. */
    int left = 1;
    for (int i = 0; i < 300 && left; i++) {
        left = count_leftovers();
        usleep(100000);
    }
    assert_int_equal(left, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(normal_run_cleans_up),
        cmocka_unit_test(ctrl_c_mid_run_cleans_up),
        cmocka_unit_test(killed_driver_takes_its_children_along),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
