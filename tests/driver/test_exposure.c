/* ctest-lock: machine (trains, or times a server) */
/* test_exposure.c - what a local run shows other local users. While a short
 * `spirt train --arch spirt` runs: no secret of the run (token, Redis and
 * NATS passwords, the join key) is in any of its processes' command lines or
 * environments, the files holding them are the owner's alone, and every
 * socket its processes listen on - the functions' included - is on
 * 127.0.0.1; every function has the servers' addresses in its environment
 * (not secrets; requests carry none). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli.h"
#include "driver/runner.h"
#include "fixture.h"
#include "procs.h"

static char dir[256], tmpdir[300], run_dir[400], log_path[400];
static pid_t driver;
static char secrets[4][128];
static const char *const secret_files[4] = {RUNNER_TOKEN_FILE, RUNNER_REDIS_PASSWORD_FILE,
                                            RUNNER_NATS_PASSWORD_FILE, RUNNER_AUTH_KEY_FILE};

/* Starts the run and waits until it trains (every process is up). */
static int setup(void **state)
{
    (void)state;
    cli_TempDir(dir, sizeof dir);
    snprintf(tmpdir, sizeof tmpdir, "%s/tmp", dir);
    snprintf(log_path, sizeof log_path, "%s/spirt.log", dir);
    if (!dir[0] || mkdir(tmpdir, 0700) != 0)
        return -1;
    char env_tmp[400];
    snprintf(env_tmp, sizeof env_tmp, "TMPDIR=%s", tmpdir);
    char *env[] = {env_tmp, NULL};
    /* Epochs enough to still be running while the tests look. */
    const char *args[] = {"train", "--arch", "spirt", "--workers", "2", "--train-samples", "2000",
                          "--test-samples", "500", "--epochs", "200", NULL};
    driver = cli_Spawn(log_path, env, args);
    if (driver <= 0 || cli_WaitLog(log_path, "started", 120) != 0) {
        fprintf(stderr, "the run did not start:\n%s\n", cli_Log(dir));
        return -1;
    }
    char pattern[400];
    snprintf(pattern, sizeof pattern, "%s/spirt-run-*", tmpdir);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0 || g.gl_pathc != 1)
        return -1;
    snprintf(run_dir, sizeof run_dir, "%s", g.gl_pathv[0]);
    globfree(&g);
    /* ready: the functions answer /readyz before the driver sends init */
    sleep(1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (driver > 0) {
        kill(driver, SIGINT);
        cli_WaitExit(driver, 60);
    }
    cli_RemoveDir(dir);
    return 0;
}

/* The run's processes: the driver and its children. */
static int run_Procs(pid_t *out, int cap)
{
    out[0] = driver;
    return 1 + px_Children(driver, out + 1, cap - 1);
}

static void secrets_are_on_no_command_line_and_in_no_environment(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++) {
        char path[500];
        snprintf(path, sizeof path, "%s/%s", run_dir, secret_files[i]);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        size_t n = fread(secrets[i], 1, sizeof secrets[i] - 1, f);
        fclose(f);
        secrets[i][n] = '\0';
        assert_true(n >= 32);
    }
    /* the servers' config files hold the passwords too */
    glob_t g;
    char pattern[500];
    snprintf(pattern, sizeof pattern, "%s/*.conf", run_dir);
    assert_int_equal(glob(pattern, 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 4); /* 2 peers, shared, nats */
    for (size_t i = 0; i < g.gl_pathc; i++) {
        struct stat st;
        assert_int_equal(stat(g.gl_pathv[i], &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }
    globfree(&g);
    struct stat st;
    assert_int_equal(stat(run_dir, &st), 0);
    assert_int_equal(st.st_mode & 0077, 0);

    pid_t pids[128];
    int n = run_Procs(pids, 128);
    assert_true(n >= 1 + 4 + 8); /* driver, 4 servers, the functions */
    static char buf[1 << 20];
    for (int p = 0; p < n; p++) {
        const char *what[] = {"cmdline", "environ"};
        for (int w = 0; w < 2; w++) {
            size_t len = px_Read(pids[p], what[w], buf, sizeof buf);
            assert_true(len > 0 || w == 1);
            for (int i = 0; i < 4; i++) {
                if (px_Contains(buf, len, secrets[i]))
                    print_error("pid %d (%s): /proc/%s holds the secret of %s\n", (int)pids[p],
                                px_Exe(pids[p]), what[w], secret_files[i]);
                assert_false(px_Contains(buf, len, secrets[i]));
            }
        }
    }
}

static void everything_listens_on_loopback_only(void **state)
{
    (void)state;
    char fn_prefix[512];
    snprintf(fn_prefix, sizeof fn_prefix, "%s", fx_BinPath("spirt-fn-"));
    pid_t pids[128];
    int n = run_Procs(pids, 128), functions = 0, sockets = 0;
    for (int p = 1; p < n; p++) {
        char addrs[16][64];
        int k = px_Listening(pids[p], addrs, 16);
        int is_fn = strncmp(px_Exe(pids[p]), fn_prefix, strlen(fn_prefix)) == 0;
        functions += is_fn;
        if (is_fn)
            assert_true(k >= 1);
        for (int i = 0; i < k; i++) {
            if (strncmp(addrs[i], "127.0.0.1:", 10) != 0)
                print_error("pid %d (%s) listens on %s\n", (int)pids[p], px_Exe(pids[p]),
                            addrs[i]);
            assert_true(strncmp(addrs[i], "127.0.0.1:", 10) == 0);
        }
        sockets += k;
    }
    print_message("%d processes, %d of them functions, listen on %d sockets, all on 127.0.0.1\n",
                  n - 1, functions, sockets);
    assert_true(functions >= 8);
    assert_true(sockets >= functions + 4);
}

/* The first socket `pid` listens on, "127.0.0.1:port" ("" when none). */
static const char *listen_Addr(pid_t pid)
{
    static char addrs[16][64];
    return px_Listening(pid, addrs, 16) >= 1 ? addrs[0] : "";
}

/* Addresses are not secrets: every function gets those of the run's
 * servers in its environment - the only ones it connects to (requests
 * name a peer by its index). */
static void functions_get_the_servers_addresses_in_their_environment(void **state)
{
    (void)state;
    char fn_prefix[512], peers[2][64] = {"", ""}, shared[64] = "", nats[64] = "";
    snprintf(fn_prefix, sizeof fn_prefix, "%s", fx_BinPath("spirt-fn-"));
    pid_t pids[128];
    int n = run_Procs(pids, 128);
    static char buf[1 << 16];
    /* Which server is which: a redis-server works in its own directory of
     * the run dir (it rewrites its command line). */
    for (int p = 1; p < n; p++) {
        char link[64], cwd[512] = "";
        snprintf(link, sizeof link, "/proc/%d/cwd", (int)pids[p]);
        ssize_t k = readlink(link, cwd, sizeof cwd - 1);
        cwd[k > 0 ? k : 0] = '\0';
        const char *base = strrchr(cwd, '/') ? strrchr(cwd, '/') + 1 : cwd;
        if (!strcmp(base, "redis-peer-0"))
            snprintf(peers[0], sizeof peers[0], "%s", listen_Addr(pids[p]));
        else if (!strcmp(base, "redis-peer-1"))
            snprintf(peers[1], sizeof peers[1], "%s", listen_Addr(pids[p]));
        else if (!strcmp(base, "redis-shared"))
            snprintf(shared, sizeof shared, "%s", listen_Addr(pids[p]));
        else if (strstr(px_Exe(pids[p]), "nats-server"))
            snprintf(nats, sizeof nats, "%s", listen_Addr(pids[p]));
    }
    assert_true(peers[0][0] && peers[1][0] && shared[0] && nats[0]);
    char want[3][200];
    snprintf(want[0], sizeof want[0], "SPIRT_REDIS_PEERS=%s,%s", peers[0], peers[1]);
    snprintf(want[1], sizeof want[1], "SPIRT_REDIS_SHARED=%s", shared);
    snprintf(want[2], sizeof want[2], "SPIRT_NATS_URL=nats://%s", nats);
    int functions = 0;
    for (int p = 1; p < n; p++) {
        if (strncmp(px_Exe(pids[p]), fn_prefix, strlen(fn_prefix)) != 0)
            continue;
        functions++;
        size_t len = px_Read(pids[p], "environ", buf, sizeof buf);
        for (int i = 0; i < 3; i++) {
            /* the whole entry: NUL-terminated in /proc/PID/environ */
            int found = 0;
            for (size_t at = 0; at < len && !found; at += strlen(buf + at) + 1)
                found = strcmp(buf + at, want[i]) == 0;
            if (!found)
                print_error("pid %d (%s) lacks %s\n", (int)pids[p], px_Exe(pids[p]), want[i]);
            assert_true(found);
        }
    }
    assert_true(functions >= 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(secrets_are_on_no_command_line_and_in_no_environment),
        cmocka_unit_test(functions_get_the_servers_addresses_in_their_environment),
        cmocka_unit_test(everything_listens_on_loopback_only),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
