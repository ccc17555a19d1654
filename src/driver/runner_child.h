/* runner_child.h - one child process of the local runner (runner.c):
 * started with an environment that carries no secret of ours, dying with
 * the driver, stopped with a grace period, read for CPU and for the end of
 * its log. */
#ifndef SPIRT_DRIVER_RUNNER_CHILD_H
#define SPIRT_DRIVER_RUNNER_CHILD_H

#include <stddef.h>
#include <sys/types.h>

/* How long a child may drain after SIGTERM before it gets SIGKILL. */
#define CHILD_STOP_GRACE_MS 5000
/* How many lines of a dead child's log its error message shows. */
#define LOG_TAIL_LINES 12

/* fork + exec of argv[0] (PATH searched) with our environment less the
 * secrets (SPIRT_TOKEN, ..._PASSWORD, SPIRT_AUTH_KEY and their _FILE forms)
 * and then `extra_env` ("K=V", replacing ours; may be NULL); stdout and
 * stderr appended to log_path (0600), stdin /dev/null, its own process
 * group, SIGTERM when the driver dies. Exit status 127: it could not be
 * run. Returns the pid, -1 with errno set. */
pid_t child_Spawn(char *const argv[], char *const extra_env[], const char *log_path);

/* SIGTERM, then SIGKILL after CHILD_STOP_GRACE_MS; reaps it. pid <= 0: no-op. */
void child_Stop(pid_t pid);

/* utime + stime + cutime + cstime of a live process in ms; -1 when gone. */
double child_CpuMs(pid_t pid);

/* The last LOG_TAIL_LINES lines of a log, each indented and cut at 160
 * characters, into out (or why it could not be read). */
void child_LogTail(const char *path, char *out, size_t cap);

void child_SleepMs(long ms);

#endif
