/* exec_internal.h - the executor's shared state, internal to src/driver.
 *
 * The executor is three concerns around one state:
 *   exec_loop.c     the iteration loop: worker threads, steps with fan-out,
 *                   the epoch gate and evaluation, progress
 *   exec_members.c  membership: failures, departures, exclusions, the
 *                   fault-injection hold, standby and rejoin
 *   exec_report.c   statistics of the steps' answers and the report
 *   executor.c      setting up, running and tearing down a job
 *
 * Everything in exec_state is guarded by `lock`, except what is fixed
 * before the worker threads start (plan, res's pointers, total) and what
 * one worker thread alone touches (its own `worker`). No step is ever
 * invoked with the lock held: an invocation can take as long as its
 * timeout, and every other worker would wait for it. */
#ifndef SPIRT_EXEC_INTERNAL_H
#define SPIRT_EXEC_INTERNAL_H

#include <pthread.h>
#include <signal.h>

#include "driver/executor.h"

#define EXEC_MAX_WORKERS JOB_MAX_WORKERS
#define EXEC_MAX_STEPS 16
#define EXEC_MAX_FANOUT JOB_MAX_MINIBATCHES /* invocations of one step at once */

/* Sums of what the steps reported, per step of the table. */
typedef struct {
    double wall_ms;           /* driver-side wall time (a fan-out group counts once) */
    double compute_ms, store_ms, sync_ms, transfer_ms;
    double bytes_in, bytes_out;
    long groups;              /* invocation groups (worker-iterations) */
    double call_seconds;      /* summed duration of every invocation (billing) */
    long calls;               /* answered invocations */
    long retries;             /* attempts after the first, answered or not */
    long in_db, client_side;  /* average/update: where the math ran */
} step_stats;

/* What the report says about the job as a whole. */
typedef struct {
    step_stats steps[EXEC_MAX_STEPS];
    long worker_iterations;   /* iterations summed over workers */
    long rejected[EXEC_MAX_WORKERS]; /* inputs of peer q other peers refused */
    long rejected_total;
    long lost;                /* worker-iterations that failed peers missed */
    cJSON *failures;          /* [{peer, iteration, reason}] */
    cJSON *departures;        /* [{worker, iteration}]: retired by the architecture */
    cJSON *exclusions;        /* [{peer, iteration, by, reason}] */
    cJSON *rejoins;           /* [{peer, iteration, failed_at, ...}] */
    cJSON *timeouts;          /* [{step, worker, iteration, duration_ms, wait, ...}] */
    double *iter_ms;          /* wall time of every worker-iteration that completed */
    long n_iter, cap_iter;
} exec_stats;

/* One worker's place in the job. */
typedef struct {
    int alive;                /* in the live set */
    long started;             /* the iteration it is in */
    long joined_at;           /* iteration it last rejoined at, -1 */
    long failed_at;           /* iteration it last failed at, -1 */
    int held;                 /* waiting at the start of join_iter */
    int at_hold;              /* arrived at the start of hooks->hold_at */
    int rejoin_tries;
    int excl_noted;           /* its exclusion is recorded (until it rejoins) */
    int left_out;             /* out because a decision left it out, not a failure */
} member;

typedef struct {
    member m[EXEC_MAX_WORKERS];
    int n_alive;
    long join_iter;           /* a rejoin pending at this iteration, -1: none */
    int hold_state;           /* 0 pending, 1 running on_hold, 2 done */
    int n_done;               /* workers that ran the last iteration */
} exec_members;

typedef struct {
    const exec_plan *plan;
    train_result *res;
    long total;               /* iterations of the whole job */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    exec_members mem;
    exec_stats stats;
    /* epoch gate */
    long gate_gen;
    int gate_count;
    int evaluating;
    /* progress, as seen by the first live worker */
    double start, eval_seconds;
    long eval_iteration;      /* the iteration the last evaluation saw */
    float loss;               /* smoothed training loss */
    long iterations;          /* completed iterations */
    /* job outcome */
    int stop;
    spStatus fatal;
    char fatal_msg[1024];
} exec_state;

typedef struct {
    exec_state *x;
    int w;
    int live[EXEC_MAX_WORKERS];   /* this worker's view of the live peers */
    int n_live;
} worker;

/* What an iteration's answers asked the executor to do. */
typedef struct {
    int leave;   /* this worker leaves the job (scaled in), not a failure */
    int stop;    /* the job is done (e.g. the supervisor reached the target) */
    int excluded; /* the iteration's decided live set left this worker out */
} iteration_flags;

/* executor.c */
extern volatile sig_atomic_t exec_stop_requested;
/* Timed, so a stop requested from a signal handler is noticed. Under lock. */
void exec_WaitMs(exec_state *x, long ms);
/* Records the first fatal error and stops the job. Under lock. */
void exec_Fatal(exec_state *x, spStatus st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* exec_members.c (all "under lock" unless said otherwise) */
int members_FirstAlive(const exec_state *x);
void members_Init(exec_state *x, worker *wk);
/* The worker's steps failed: it leaves the live set; fatal when the
 * architecture cannot lose it. Takes the lock. */
void members_Fail(worker *wk, long t, spStatus st, const char *msg);
/* Retired by the architecture (scale-in). Takes the lock. */
void members_Leave(worker *wk, long t);
/* The decided live set of t left the worker out while it was alive (the
 * barrier's "self_excluded"): it leaves the live set and, like a failed
 * worker, stands by and rejoins - but it is no failure, so never fatal
 * while another worker is live. Takes the lock. */
void members_Excluded(worker *wk, long t);
/* Records an answer's "excluded". Under lock. */
void members_NoteExcluded(exec_state *x, const cJSON *resp, int by, long t);
/* Adopts the live set the iteration's context decided (barrier). */
void members_ViewFromContext(worker *wk, const cJSON *ctx);
/* Peers rejoining at t outside this worker's view, NULL if none. Takes the lock. */
cJSON *members_Joiners(const worker *wk, long t);
/* The start of iteration t: waits while a rejoin is pending. Takes the lock. */
void members_JoinGate(worker *wk, long t);
/* Holds every live worker at hooks->hold_at while on_hold runs. Takes the lock. */
void members_HoldGate(worker *wk, long t);
/* A failed worker waits for its peer and rejoins: 1 with *t = the
 * iteration it rejoined at, 0 when it stays out. Takes the lock. */
int members_Standby(worker *wk, long *t);
/* The last iteration ran: no rejoin any more. Takes the lock. */
void members_Done(exec_state *x);
/* Workers that never came back missed the rest of the run. Under lock. */
void members_CountLost(exec_state *x);

/* exec_report.c */
int stats_Init(exec_stats *s);
void stats_Free(exec_stats *s);
/* Adds one step answer's timings, bytes, refusals and the waits it
 * reports as timed out. Under lock. */
void stats_Add(exec_state *x, int step, const cJSON *resp, int by, long t);
/* The attempts of a call that ended by timeout (retried or not). Under lock. */
void stats_Trace(exec_state *x, int step, const invoke_trace *tr, int by, long t);
/* One completed worker-iteration took ms. Under lock. */
void stats_Iteration(exec_state *x, double ms);
/* Writes the report's details. After the worker threads ended. */
void stats_Report(exec_state *x);

/* exec_loop.c */
void *loop_WorkerThread(void *arg);
/* Evaluates the model of the first live worker after `epoch`. Call without
 * the lock; takes it to record the result. */
void loop_Evaluate(exec_state *x, int epoch);

#endif
