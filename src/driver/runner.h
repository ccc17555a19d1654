/* runner.h - the local runner: the whole system on one machine.
 *
 * Starts, on free 127.0.0.1 ports under one temp dir (mode 0700): a
 * redis-server per peer (spirt module loaded; the default user disabled, one
 * ACL user with a random password), a shared redis-server (dataset store,
 * same ACL), nats-server with JetStream (user + password), and every step
 * function as its own process (bearer token required), listening on
 * 127.0.0.1 only, configured through its environment with the servers'
 * addresses (core/env_names.h; requests carry none). No secret is on a command line or in an environment:
 * servers read theirs from <name>.conf, functions from the files below (all
 * mode 0600). runner_Stop ends every process it started and removes the temp
 * dir; it is also run from the signal path, children die with the driver
 * (PR_SET_PDEATHSIG), and should the driver be SIGKILLed the reaper
 * (reaper.h) removes the dir, so nothing is left behind. */
#ifndef SPIRT_RUNNER_H
#define SPIRT_RUNNER_H

#include <sys/types.h>

#include "core/status.h"
#include "driver/reaper.h"
#include "job/job.h"

#define RUNNER_MAX_FUNCTIONS 32
/* The peers' redis-servers, the shared one, nats-server, the functions. */
#define RUNNER_MAX_PROCS (JOB_MAX_PEER_DATABASES + 2 + RUNNER_MAX_FUNCTIONS)

/* The run's secrets, one file each in the run dir. */
#define RUNNER_TOKEN_FILE "token"
#define RUNNER_REDIS_PASSWORD_FILE "redis-password"
#define RUNNER_NATS_PASSWORD_FILE "nats-password"
#define RUNNER_AUTH_KEY_FILE "auth-key"

typedef struct {
    pid_t pid;
    int port;
    char name[48];
    double cpu_ms;             /* its last CPU reading (runner_Cpu), kept when it ends */
    double cpu_ended_ms;       /* processes that ran in this slot before (a restarted peer) */
} runner_proc;

typedef struct {
    char dir[256];
    runner_proc procs[RUNNER_MAX_PROCS];
    int n_procs;
    int n_peers;
    int peer_ports[JOB_MAX_PEER_DATABASES];
    int shared_port;
    int nats_port;
    int module_loaded;
    char token[65];
    char redis_user[32];       /* the ACL user every client logs in as */
    char redis_password[65];
    char auth_key[65];         /* master key of peer authentication (hex) */
    char nats_user[32];
    char nats_password[65];
    struct {
        char step[32];
        int port;
    } functions[RUNNER_MAX_FUNCTIONS];
    int n_functions;
    reaper reap;               /* cleans up should the driver be SIGKILLed */
    int keep_logs;             /* a child died: its log is evidence, keep the logs */
} runner;

typedef struct {
    int peers;                 /* per-peer Redis servers to start */
    const char *const *steps;  /* function processes to start (may be 0) */
    int n_steps;
    int appendonly;            /* AOF persistence for peer Redis */
    int quiet;
} runner_options;

spStatus runner_Start(runner *r, const runner_options *o);
/* Stops everything and removes the run dir - all but its *.log files when a
 * child died (runner_Check, or during start-up), so the logs that explain
 * it stay for the user. */
void runner_Stop(runner *r);
/* SP_OK while every child started (and not killed on purpose) still runs.
 * Otherwise an error naming each child that ended, why (exit status or
 * signal), where its log is and the log's last lines; the logs are then
 * kept. A stop by the signal path is no such death. */
spStatus runner_Check(runner *r);
/* For a failure st (message set): adds runner_Check's account of children
 * that died, the likely cause, to the message. Returns st. */
spStatus runner_Explain(runner *r, spStatus st);

/* CPU time (user + system, with the children each one waited for) in ms,
 * by kind of process, from /proc/<pid>/stat: a process that ended counts
 * with its last reading (each call reads them all; a peer is read just
 * before runner_KillPeer kills it). `driver` is the reaper's only: the
 * caller adds its own. */
typedef struct {
    double driver, functions, redis, nats;
} runner_cpu;
void runner_Cpu(runner *r, runner_cpu *out);

/* Kills (SIGKILL) / restarts a peer's redis-server: fault injection. */
spStatus runner_KillPeer(runner *r, int peer);
spStatus runner_RestartPeer(runner *r, int peer);

/* Async-signal-safe: SIGTERM to every process any runner started. */
void runner_KillAllFromSignal(void);

/* Where the spirt binaries are: the directory of this executable. */
const char *runner_BinDir(void);

#endif
