/* ctest-lock: machine (trains, or times a server) */
/* test_runner.c - the local runner leaves nothing behind: after a normal
 * run, after Ctrl-C (SIGINT) mid-run, and after the driver is SIGKILLed, no
 * redis-server, nats-server, function process or reaper it started
 * survives, and its temp dir is gone. Except for evidence: when one of its
 * servers dies, the error names it, shows the end of its log and says where
 * the log is, and the logs (only they) stay. */
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

/* A fresh scratch dir with an empty TMPDIR in it; 0 on success. */
static int fresh_Dirs(void)
{
    cli_TempDir(dir, sizeof dir);
    snprintf(tmpdir, sizeof tmpdir, "%s/tmp", dir);
    return dir[0] && mkdir(tmpdir, 0700) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    return fresh_Dirs();
}

static int teardown(void **state)
{
    (void)state;
    cli_RemoveDir(dir);
    return 0;
}

/* Processes started for this test: servers mention our TMPDIR in their
 * arguments, function processes run our spirt-fn-* binaries, and every one
 * of them (the reaper too) has our TMPDIR in its environment. */
static int count_leftovers(void)
{
    char fn_prefix[512], env_tmp[400];
    snprintf(fn_prefix, sizeof fn_prefix, "%s", fx_BinPath("spirt-fn-"));
    snprintf(env_tmp, sizeof env_tmp, "TMPDIR=%s", tmpdir);
    static pid_t pids[32768];
    static char buf[1 << 16];
    int n = px_All(pids, 32768), found = 0;
    for (int i = 0; i < n; i++) {
        if (pids[i] == getpid())
            continue;
        size_t len = px_Read(pids[i], "cmdline", buf, sizeof buf);
        int ours = strncmp(px_Exe(pids[i]), fn_prefix, strlen(fn_prefix)) == 0 ||
                   px_Contains(buf, len, tmpdir);
        len = px_Read(pids[i], "environ", buf, sizeof buf);
        found += ours || px_Contains(buf, len, env_tmp);
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

static pid_t start_spirt_keep(const char *log, int keep_dir)
{
    char env_tmp[400], env_keep[] = "SPIRT_KEEP_RUN_DIR=1";
    snprintf(env_tmp, sizeof env_tmp, "TMPDIR=%s", tmpdir);
    char *env[] = {env_tmp, keep_dir ? env_keep : NULL, NULL};
    const char *args[] = {"train", "--arch", "spirt", "--workers", "2", "--epochs", "50",
                          "--train-samples", "4000", "--test-samples", "500", "--batch", "32",
                          "--sync-timeout", "5000", NULL};
    return cli_Spawn(log, env, args);
}

static pid_t start_spirt(const char *log) { return start_spirt_keep(log, 0); }

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

/* SIGKILLs a run's driver once it trains; waits until the reaper is done. */
static void kill_driver(int keep_dir)
{
    char log[400];
    snprintf(log, sizeof log, "%s/sigkill.log", dir);
    unlink(log); /* a log of an earlier run would look like this one training */
    pid_t pid = start_spirt_keep(log, keep_dir);
    assert_true(pid > 0);
    assert_int_equal(cli_WaitLog(log, "iteration", 120), 0);
    assert_int_equal(dir_entries(tmpdir), 1); /* the run dir */
    kill(pid, SIGKILL);
    cli_WaitExit(pid, 10);
    /* Children get SIGTERM when the driver dies; the reaper gives them 5 s,
     * SIGKILLs what is left, then removes the run dir and exits. */
    int left = 1;
    for (int i = 0; i < 300 && (left || dir_entries(tmpdir) != keep_dir); i++) {
        left = count_leftovers();
        usleep(100000);
    }
    assert_int_equal(left, 0);
}

static void killed_driver_takes_its_children_along(void **state)
{
    (void)state;
    kill_driver(0);
    assert_int_equal(dir_entries(tmpdir), 0);
}

/* Kept for debugging: the reaper still ends every process, but the dir stays. */
static void killed_driver_keeps_the_dir_when_asked(void **state)
{
    (void)state;
    kill_driver(1);
    assert_int_equal(dir_entries(tmpdir), 1);
    cli_RemoveDir(dir); /* what was kept on purpose */
    assert_int_equal(fresh_Dirs(), 0);
}

/* The one run dir under tmpdir (into out); 0 when there is exactly one. */
static int run_Dir(char *out, size_t cap)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, "spirt-run-", 10) && ++n == 1)
            snprintf(out, cap, "%s/%s", tmpdir, e->d_name);
    if (d)
        closedir(d);
    return n == 1 ? 0 : -1;
}

/* The run failed (status 1) naming a server whose name starts with
 * `server`, `how` it ended and the end of its log, `log_line`; the log's
 * path is in the message and the file exists; nothing but logs is left of
 * the run, and no process. */
static void assert_death_reported(int rc, const char *out, const char *server, const char *how,
                                  const char *log_line)
{
    if (rc != 1 || !strstr(out, how) || !strstr(out, log_line))
        print_error("exit %d:\n%s\n", rc, out);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, how));
    assert_non_null(strstr(out, log_line));
    /* "... its log <run>/<server...>.log (kept) ends with:" */
    char run[600], log[700];
    assert_int_equal(run_Dir(run, sizeof run), 0);
    snprintf(log, sizeof log, "its log %s/%s", run, server);
    const char *at = strstr(out, log);
    assert_non_null(at);
    at += strlen("its log ");
    const char *end = strstr(at, ".log (kept)");
    assert_non_null(end);
    snprintf(log, sizeof log, "%.*s.log", (int)(end - at), at);
    assert_int_equal(access(log, R_OK), 0);
    DIR *d = opendir(run);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            assert_true(len > 4 && !strcmp(e->d_name + len - 4, ".log"));
    }
    if (d)
        closedir(d);
    int left = 1;
    for (int i = 0; i < 100 && left; i++) {
        left = count_leftovers();
        usleep(100000);
    }
    assert_int_equal(left, 0);
    cli_RemoveDir(dir); /* what was kept on purpose */
    assert_int_equal(fresh_Dirs(), 0);
}

static void server_dead_at_start_is_named_and_its_log_kept(void **state)
{
    (void)state;
    /* A module redis-server refuses to load: it exits while starting. */
    char module[400], env_tmp[400], env_module[450], log[400];
    snprintf(module, sizeof module, "%s/not-a-module.so", dir);
    FILE *f = fopen(module, "w");
    assert_non_null(f);
    fputs("not a module\n", f);
    fclose(f);
    snprintf(env_tmp, sizeof env_tmp, "TMPDIR=%s", tmpdir);
    snprintf(env_module, sizeof env_module, "SPIRT_MODULE=%s", module);
    snprintf(log, sizeof log, "%s/dead-at-start.log", dir);
    char *env[] = {env_tmp, env_module, NULL};
    const char *args[] = {"train", "--arch", "spirt", "--workers", "2", "--train-samples", "2000",
                          NULL};
    pid_t pid = cli_Spawn(log, env, args);
    assert_true(pid > 0);
    int rc = cli_WaitExit(pid, 120);
    char out[8192] = "";
    f = fopen(log, "r");
    if (f) {
        out[fread(out, 1, sizeof out - 1, f)] = '\0';
        fclose(f);
    }
    assert_death_reported(rc, out, "redis-", "exited with status 1", "Can't load module");
}

static void server_killed_mid_run_is_named_and_its_log_kept(void **state)
{
    (void)state;
    char log[400], env_tmp[400];
    snprintf(log, sizeof log, "%s/killed-mid-run.log", dir);
    snprintf(env_tmp, sizeof env_tmp, "TMPDIR=%s", tmpdir);
    char *env[] = {env_tmp, NULL};
    /* All-reduce keeps everything in the shared Redis: without it no step
     * can go on. */
    const char *args[] = {"train", "--arch", "all-reduce", "--workers", "2", "--epochs", "50",
                          "--train-samples", "4000", "--test-samples", "500", "--batch", "32",
                          NULL};
    pid_t pid = cli_Spawn(log, env, args);
    assert_true(pid > 0);
    assert_int_equal(cli_WaitLog(log, "iteration", 120), 0);
    /* Redis renames its process, but it works in its own dir. */
    pid_t kids[64];
    int n = px_Children(pid, kids, 64), killed = 0;
    for (int i = 0; i < n; i++) {
        char path[64], cwd[600];
        snprintf(path, sizeof path, "/proc/%d/cwd", (int)kids[i]);
        ssize_t len = readlink(path, cwd, sizeof cwd - 1);
        cwd[len > 0 ? len : 0] = '\0';
        if (len > 13 && !strcmp(cwd + len - 13, "/redis-shared"))
            killed += kill(kids[i], SIGKILL) == 0;
    }
    assert_int_equal(killed, 1);
    int rc = cli_WaitExit(pid, 300);
    char out[8192] = "";
    FILE *f = fopen(log, "r");
    if (f) {
        out[fread(out, 1, sizeof out - 1, f)] = '\0';
        fclose(f);
    }
    assert_death_reported(rc, out, "redis-shared", "was killed by signal 9",
                          "Ready to accept connections");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(normal_run_cleans_up),
        cmocka_unit_test(ctrl_c_mid_run_cleans_up),
        cmocka_unit_test(killed_driver_takes_its_children_along),
        cmocka_unit_test(killed_driver_keeps_the_dir_when_asked),
        cmocka_unit_test(server_dead_at_start_is_named_and_its_log_kept),
        cmocka_unit_test(server_killed_mid_run_is_named_and_its_log_kept),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
