/* reaper.c - cleaning up after a SIGKILLed driver (reaper.h).
 *
 * Two designs were possible: a sweep, at the next start, of stale run dirs
 * whose owner pid is gone, or a process that outlives the driver. The sweep
 * leaves a dead run's dir - with its secrets - in place until some later run
 * (perhaps never) and has to judge other runs' dirs; so this is the second.
 * The reaper holds the read end of a pipe whose write end only the driver
 * holds (close-on-exec keeps it out of the servers and functions). The driver
 * sends the pid of every child it starts; end of file without a "finished"
 * message means the driver is gone, however it died. The reaper then gives
 * the children (which got SIGTERM from PR_SET_PDEATHSIG) a moment to exit,
 * SIGKILLs those still there, and removes the run dir. A pid is compared
 * with the start time it had when the driver reported it, so a pid reused by
 * an unrelated process is never signalled. It runs in its own session, so
 * Ctrl-C in the terminal (which the driver handles itself) does not reach
 * it. Being a fork of a threaded process, it only makes async-signal-safe
 * calls until it execs rm. */
#include "driver/reaper.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REAPER_MAX 512     /* children one run may report, restarts included */
#define REAPER_GRACE_MS 5000

typedef struct {
    int32_t kind;          /* 'P': a child's pid; 'F': the driver finished normally */
    int32_t pid;
} reaper_msg;

/* ---- in the reaper: async-signal-safe only ------------------------------- */

/* The start time of pid (field 22 of /proc/<pid>/stat), 0 when it is gone
 * or a zombie. */
static unsigned long long proc_Start(pid_t pid)
{
    char path[32] = "/proc/", digits[16];
    int n = 0;
    for (unsigned v = (unsigned)pid; v || !n; v /= 10)
        digits[n++] = (char)('0' + v % 10);
    size_t k = 6;
    while (n)
        path[k++] = digits[--n];
    memcpy(path + k, "/stat", 6);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[1024];
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0)
        return 0;
    buf[len] = '\0';
    /* "pid (comm) S ppid ...": comm may hold spaces and ')' itself */
    char *p = NULL;
    for (char *q = buf; *q; q++)
        if (*q == ')')
            p = q;
    if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
        return 0;
    int field = 2; /* p + 1 starts field 3, the state */
    for (p++; *p && field < 22; p++)
        if (*p == ' ')
            field++;
    unsigned long long start = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        start = start * 10 + (unsigned)(*p - '0');
    return start;
}

typedef struct {
    pid_t pid;
    unsigned long long start;
} watched;

static int still_There(const watched *w) { return proc_Start(w->pid) == w->start; }

static void sleep_100ms(void)
{
    struct timespec ts = {0, 100000000L};
    nanosleep(&ts, NULL);
}

/* Waits up to REAPER_GRACE_MS for every watched process to be gone. */
static void wait_Gone(const watched *w, int n)
{
    for (int t = 0; t < REAPER_GRACE_MS / 100; t++) {
        int left = 0;
        for (int i = 0; i < n; i++)
            left += still_There(&w[i]);
        if (!left)
            return;
        sleep_100ms();
    }
}

static void reaper_Main(int fd, const char *dir, int keep_dir)
{
    static watched w[REAPER_MAX];
    int n = 0;
    for (;;) {
        reaper_msg m;
        ssize_t got = read(fd, &m, sizeof m);
        if (got < 0 && errno == EINTR)
            continue;
        if (got != (ssize_t)sizeof m)
            break; /* end of file: the driver is gone */
        if (m.kind == 'F')
            _exit(0);
        if (m.kind == 'P' && n < REAPER_MAX) {
            w[n].pid = m.pid;
            w[n].start = proc_Start(m.pid);
            n += w[n].start != 0;
        }
    }
    wait_Gone(w, n);
    for (int i = 0; i < n; i++)
        if (still_There(&w[i]))
            kill(w[i].pid, SIGKILL);
    wait_Gone(w, n);
    if (keep_dir)
        _exit(0);
    char *argv[] = {"rm", "-rf", "--", (char *)dir, NULL};
    char *envp[] = {NULL};
    execve("/bin/rm", argv, envp);
    execve("/usr/bin/rm", argv, envp);
    _exit(127);
}

/* ---- in the driver ------------------------------------------------------- */

spStatus reaper_Start(reaper *rp, const char *dir, int keep_dir)
{
    rp->pid = 0;
    rp->fd = -1;
    if (!strstr(dir, "/spirt-run-"))
        return sp_Error(SP_ERR_INVALID, "reaper: %s is not a run dir", dir);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return sp_Error(SP_ERR_IO, "reaper: pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return sp_Error(SP_ERR_IO, "reaper: fork: %s", strerror(e));
    }
    if (pid == 0) {
        setsid();
        struct sigaction ign = {.sa_handler = SIG_IGN};
        sigaction(SIGINT, &ign, NULL);
        sigaction(SIGHUP, &ign, NULL);
        sigaction(SIGPIPE, &ign, NULL);
        prctl(PR_SET_NAME, "spirt-reaper", 0, 0, 0);
        /* Nothing of the driver's stays open here: not its output (a pipe
         * the driver's caller waits on), not the pipe's write end. */
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        dup2(p[0], 3);
        if (close_range(4, ~0U, 0) != 0)
            for (int fd = 4; fd < 65536; fd++)
                close(fd);
        reaper_Main(3, dir, keep_dir);
    }
    close(p[0]);
    rp->pid = pid;
    rp->fd = p[1];
    return SP_OK;
}

static void reaper_Send(reaper *rp, int32_t kind, pid_t pid)
{
    if (rp->fd < 0)
        return;
    reaper_msg m = {kind, (int32_t)pid};
    while (write(rp->fd, &m, sizeof m) < 0 && errno == EINTR)
        ;
}

void reaper_Watch(reaper *rp, pid_t child)
{
    if (child > 0)
        reaper_Send(rp, 'P', child);
}

void reaper_Finish(reaper *rp)
{
    reaper_Send(rp, 'F', 0);
    if (rp->fd >= 0)
        close(rp->fd);
    if (rp->pid > 0)
        waitpid(rp->pid, NULL, 0);
    rp->fd = -1;
    rp->pid = 0;
}
