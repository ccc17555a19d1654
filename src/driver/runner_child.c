/* runner_child.c - a child process of the local runner: the environment
 * it gets (ours less the secrets), starting it so that it dies with the
 * driver, stopping it, its CPU time and the end of its log. */
#include "driver/runner_child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/env_names.h"

void child_SleepMs(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Secrets a child must not inherit from the driver's own environment (a
 * cluster run's, say): it gets exactly those the runner hands it. */
static const char *const env_secrets[] = {ENV_TOKEN, ENV_REDIS_PASSWORD, ENV_NATS_PASSWORD,
                                          ENV_AUTH_KEY};

/* Whether "NAME=value" names `var` or `var`_FILE. */
static int env_Names(const char *entry, const char *var, int or_file)
{
    size_t n = strcspn(entry, "="), k = strlen(var);
    size_t f = strlen(ENV_FILE_SUFFIX);
    return (n == k && !strncmp(entry, var, k)) ||
           (or_file && n == k + f && !strncmp(entry, var, k) &&
            !strncmp(entry + k, ENV_FILE_SUFFIX, f));
}

/* The child's environment: ours without the secrets, then `extra` ("K=V"
 * entries that replace ours). The strings are not copied; free the array. */
static char **env_Build(char *const extra[])
{
    extern char **environ;
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    for (; extra && extra[k]; k++)
        ;
    char **env = calloc(n + k + 1, sizeof *env);
    if (!env)
        return NULL;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int drop = 0;
        for (size_t j = 0; j < sizeof env_secrets / sizeof env_secrets[0] && !drop; j++)
            drop = env_Names(environ[i], env_secrets[j], 1);
        for (size_t j = 0; j < k && !drop; j++) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)strcspn(extra[j], "="), extra[j]);
            drop = env_Names(environ[i], name, 0);
        }
        if (!drop)
            env[m++] = environ[i];
    }
    for (size_t j = 0; j < k; j++)
        env[m++] = extra[j];
    return env;
}

pid_t child_Spawn(char *const argv[], char *const extra_env[], const char *log_path)
{
    /* Built before fork: the child of a threaded process may not allocate. */
    char **env = env_Build(extra_env);
    if (!env) {
        errno = ENOMEM;
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) {
        free(env);
        return pid;
    }
    /* The child dies with the driver even if the driver is SIGKILLed. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(127);
    setpgid(0, 0); /* Ctrl-C in the terminal reaches the driver only */
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
    }
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0)
        dup2(null, 0);
    execvpe(argv[0], argv, env);
    fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* The last lines of a log, each indented, into out. */
void child_LogTail(const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(out, cap, "    (cannot read it: %s)", strerror(errno));
        return;
    }
    char buf[2048];
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof buf - 1 ? size - (off_t)sizeof buf + 1 : 0;
    ssize_t n = pread(fd, buf, sizeof buf - 1, from);
    close(fd);
    n = n > 0 ? n : 0;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    if (!n) {
        snprintf(out, cap, "    (it is empty)");
        return;
    }
    /* back from the end over LOG_TAIL_LINES line breaks */
    char *start = buf;
    int lines = 0;
    for (char *q = buf + n - 1; q > buf; q--)
        if (*q == '\n' && ++lines == LOG_TAIL_LINES) {
            start = q + 1;
            break;
        }
    if (start == buf && from > 0) {
        char *nl = strchr(buf, '\n'); /* a partial first line: skip it */
        start = nl ? nl + 1 : buf;
    }
    size_t len = 0;
    for (char *line = start; line && *line && len + 8 < cap;) {
        char *nl = strchr(line, '\n');
        int k = nl ? (int)(nl - line) : (int)strlen(line);
        /* long lines are cut: the tail must fit in an error message */
        len += (size_t)snprintf(out + len, cap - len, "%s    %.*s", len ? "\n" : "",
                                k > 160 ? 160 : k, line);
        line = nl ? nl + 1 : NULL;
    }
}

void child_Stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    int64_t end = clock_NowMs() + CHILD_STOP_GRACE_MS;
    int st;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (clock_NowMs() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        child_SleepMs(5);
    }
}

/* utime + stime + cutime + cstime (fields 14-17 of /proc/<pid>/stat) in ms,
 * -1 when the process is gone. */
double child_CpuMs(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold anything */
    unsigned long long t[4];
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu",
                     &t[0], &t[1], &t[2], &t[3]) != 4)
        return -1;
    return (double)(t[0] + t[1] + t[2] + t[3]) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

