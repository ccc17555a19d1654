/* job.h - a training job's configuration: what to train, how, and where.
 *
 * One struct serves the CLI, the driver and (as JSON) every step function,
 * so all four architectures train with literally the same settings. Filled
 * from command-line options with SPIRT_<OPTION> environment fallbacks
 * (cli/options.c) and validated here with messages that name the option. */
#ifndef SPIRT_JOB_H
#define SPIRT_JOB_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "core/status.h"
#include "ml/aggregate.h"
#include "ml/attack.h"
#include "ml/model.h"
#include "ml/optim.h"

/* Limits of a job, stated once: the CLI's options, job_Validate, job_FromJson
 * and the step requests (steps/request.h) check the same numbers, and the
 * steps size buffers by them. */
#define JOB_MAX_WORKERS 256        /* peers / workers, so also peer indices */
/* Redis servers of one peer each (SPIRT): the local runner starts at most
 * this many, --peers and a function's SPIRT_REDIS_PEERS list at most this
 * many; the architectures whose workers share one database are bounded by
 * JOB_MAX_WORKERS only. */
#define JOB_MAX_PEER_DATABASES 64
#define JOB_MAX_MINIBATCHES 64     /* M gradient invocations per peer per iteration */
#define JOB_MAX_EPOCHS 10000
#define JOB_MAX_BATCH 65536        /* samples per minibatch */
#define JOB_MAX_WAIT_MS 3600000    /* sync / heartbeat timeouts and every step's waits */
#define JOB_MAX_SLACK 64           /* MLLESS: iterations a worker may run ahead */

typedef enum {
    ARCH_SINGLE = 1,
    ARCH_SPIRT = 2,
    ARCH_MLLESS = 3,
    ARCH_SCATTER_REDUCE = 4,
    ARCH_ALL_REDUCE = 5
} arch_kind;

typedef struct {
    /* what */
    arch_kind arch;
    char id[64];              /* job name: namespaces Redis keys and NATS subjects */
    model_spec model;
    char dataset[512];        /* name ("fashion-mnist") or path */
    long train_samples;       /* 0 = all; else use the first N (quick runs) */
    long test_samples;        /* 0 = all */
    /* how */
    int workers;              /* peers (SPIRT) or workers (others) */
    int minibatches;          /* SPIRT: M gradient invocations per peer per iteration */
    int epochs;
    int batch;                /* samples per minibatch */
    optim_config optim;
    agg_config agg;           /* SPIRT: how peers' averages are combined */
    attack_config attack;     /* Byzantine peers injected for experiments (ml/attack.h) */
    uint64_t seed;
    int sync_timeout_ms;      /* barrier timeout before a peer is declared failed */
    float significance;       /* MLLESS v */
    int scale_in;             /* MLLESS auto-tuner on/off */
    int slack;                /* MLLESS: iterations ahead of the slowest (0: synchronous) */
    float target_loss;        /* stop when the training loss falls below (0 = off) */
    long eval_every;          /* also evaluate every N iterations (0 = at epoch ends only) */
    /* fault tolerance (SPIRT) */
    int heartbeat_timeout_ms; /* a peer unheard this long is excluded at the barrier (0 = off) */
    int kill_peer;            /* fault injection: SIGKILL this peer's Redis (-1 = none) */
    long kill_at_iteration;   /* ... when that peer starts this iteration */
    double restart_after_s;   /* ... and restart it (AOF) this much later (< 0 = never) */
    int resume;               /* continue the job whose state is in the running services */
    /* where */
    int transport_inproc;     /* 1: call steps in-process, 0: over HTTP */
    char functions[512];      /* URL template with {step}; "" = start locally */
    char peers[2048];         /* comma-separated host:port per peer; "" = local */
    char shared_redis[256];
    char nats[256];
    /* output */
    char report[512];         /* JSON report path ("" = none) */
    int quiet;
} job_config;

void job_Defaults(job_config *j);
spStatus job_ParseArch(const char *name, arch_kind *out);
const char *job_ArchName(arch_kind a);
/* Whether each worker of architecture a owns a Redis (SPIRT: worker p's is
 * entry p of the per-peer list) or all of them use the shared one (MLLESS,
 * ScatterReduce, AllReduce; model keys carry the worker index). The driver
 * starts and reads the databases by it and the steps resolve a worker's
 * database by it, so the two cannot disagree. */
int job_PerPeerDatabases(arch_kind a);
/* Cross-field validation (ranges, model vs dataset shape is checked later). */
spStatus job_Validate(const job_config *j);

/* Iterations per epoch, the same for the driver and the minibatch step:
 * every worker's shard holds at least floor(n_train / workers) rows
 * (data/dataset.h dataset_ShardRange), and an iteration takes minibatches *
 * batch of them, so *iters = floor(floor(n_train / workers) / (minibatches *
 * batch)). Not even one is SP_ERR_INVALID naming the numbers. */
spStatus job_ItersPerEpoch(const job_config *j, size_t n_train, long *iters);

/* The subset step functions need, as JSON (model, optimizer, aggregator,
 * batch, seed, dataset, job id); and back, validating every field. */
cJSON *job_ToJson(const job_config *j);
spStatus job_FromJson(const cJSON *o, job_config *j);

#endif
