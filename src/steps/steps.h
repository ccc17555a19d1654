/* steps.h - the workflow steps, as handlers callable over HTTP (one function
 * process each, functions/<step>/main.c) or in-process by the driver.
 *
 * Functions are stateless: everything a step needs is named in its JSON
 * request and lives in Redis. Every request carries the common fields:
 *   "job":    the job config object (driver/job.h job_ToJson)
 *   "shape":  [c, h, w, classes]   model input shape, from init's answer
 *   "iteration": t (global, 0-based), "epoch": e (1-based, optional)
 *   "peer":   this peer / worker index p (< len(peers) when peers are given)
 *   "peers":  ["host:port", ...]   per-peer Redis (SPIRT) - index = peer
 *   "shared": "host:port"          the shared Redis (dataset store; the
 *                                  database of MLLESS / LambdaML archs)
 *   "nats":   "nats://host:port"   optional; overrides SPIRT_NATS_URL
 * plus the step's own fields below. Which common fields a step requires is
 * listed with it; a missing, mistyped or out-of-range field is 400 with a
 * message naming it. "shape" must fit the job's model (model_Create) and,
 * where the dataset is read, the dataset init loaded. A request without
 * "peers" uses the shared Redis as the peer's own database. Every answer is
 * a JSON object with the step's results, "timings": {"compute_ms",
 * "store_ms","sync_ms","transfer_ms"} (those that apply) and "bytes":
 * {"in","out"} moved to/from Redis, and optionally "context": {...} - fields
 * the executor merges into the requests of the following steps of the same
 * iteration.
 *
 * Keys (all on the peer's Redis unless noted; iteration keys expire after
 * 600 s):
 *   {job}:data:meta                 (shared) JSON dataset meta, written last
 *   {job}:data:train:<i>, test:<i>  (shared) wire F32, dim features + label
 *   {job}:params:<p>, {job}:mom:<p> model and momentum state of peer p (the
 *                                   index keeps workers apart when they
 *                                   share one database)
 *   {job}:applied:<p>               last iteration update applied (retries)
 *   {job}:mb:<p>:<t>:<m>            minibatch m (wire F32 rows: dim+1 each)
 *   {job}:grad:<p>:<t>:<m>          gradient of minibatch m
 *   {job}:avg:<p>:<t>               the peer's average of its M gradients
 *   {job}:agg:<p>:<t>               the aggregate the peer applies
 * Tensors read back are checked against the model's parameter count (400
 * naming the key), their checksum (400 "format") and finiteness (400).
 * A Redis that does not answer is 503 (retryable), a missing key 404, a
 * refused password 401.
 *
 * SPIRT steps, the common fields they need, and their own fields:
 *   init       peers, shared; {"dataset_reload":bool}  -> {"shape":[...],
 *              "train_samples","test_samples","dim","params":P,
 *              "dataset_uploaded","stream_reset"}. Loads the dataset
 *              (job.dataset, limited to job.train/test_samples; a bare name
 *              is looked up in steps_config.data_dir first) into the shared
 *              Redis unless the meta shows it is there already for the same
 *              dataset and limits; puts the seeded initial model on every
 *              peer and deletes mom and applied:<p>. Init starts a RUN:
 *              with NATS configured it also deletes and recreates the job's
 *              stream, so announcements of an earlier run of the same job id
 *              cannot satisfy this run's barriers.
 *   minibatch  shape, iteration, peer, shared (peers: where to store);
 *              {"m","minibatches":M,"workers":N,"iters_per_epoch":I}
 *              -> {"samples":b,"slot","epoch","iters_per_epoch","key"}.
 *              Rows of shard p (dataset_ShardRange over the train set with
 *              N shards) visited in dataset_EpochOrder(seed, epoch, p)
 *              order; slot i = (t mod I)*M + m covers
 *              order[i*batch, (i+1)*batch). M, N default to the job's, I to
 *              floor(min shard / (M*batch)) (a larger I is 400, so every slot
 *              is full and all peers agree on epoch boundaries); epoch
 *              defaults to t/I + 1.
 *   gradient   shape, iteration, peer; {"m","minibatches"}
 *              -> {"loss","samples","key"}. A non-finite gradient is 400 and
 *              nothing is stored.
 *   average    shape, iteration, peer; {"minibatches":M} -> {"in_db":bool,
 *              "inputs","key"}. Each grad's size is checked first (STRLEN);
 *              the values are not scanned (they never leave the database) -
 *              a non-finite average is caught by aggregate.
 *   notify     iteration, peer; {"loss"} optional, sent as the payload -> {}
 *   barrier    iteration, peer; {"live":[p...] (default all), "timeout_ms"
 *              (default job.sync_timeout_ms, capped by the request deadline)}
 *              -> {"arrived":[...],"missing":[...],"losses":[...]},
 *              context {"live":[arrived]}. The caller must be in "live" and
 *              must have announced (notify) first: if it is not among the
 *              arrived the answer is 409 (waiting again would not help).
 *   aggregate  shape, iteration, peer, peers; {"live":[p...]} (default all,
 *              must include the caller) -> {"used":[...],"rejected":[{peer,
 *              code,reason}],"aggregator","fallback"?,"selected"? (Krum)}.
 *              Fetches avg:q:t from each live peer's Redis, applies
 *              job.aggregator, stores agg:p:t. The caller's own average must
 *              be good (else the step fails); another peer's that is missing,
 *              unreachable, corrupt, mis-sized or non-finite is left out and
 *              reported in "rejected". A rule that cannot run with the inputs
 *              left (Krum/multi-Krum with k < f+3, trimmed mean with
 *              2*trim >= k) falls back to the median (mean below 3 inputs)
 *              and says so in "fallback". A non-finite result is 400.
 *   update     shape, iteration, peer -> {"in_db":bool,"duplicate":bool}.
 *              params -= lr * (momentum-smoothed) agg:p:t; an iteration
 *              already applied is answered "duplicate" without applying it
 *              again, an older one is 409. Optimizer adam is 400 (the
 *              in-database update does sgd and momentum).
 *   evaluate   shape, peers, shared; {"source": peer (default "peer", else
 *              0)} -> {"accuracy","loss","samples","source",
 *              "test_set_cached"} on the test set with that peer's params.
 *              The decoded test set is cached per (shared Redis, job,
 *              upload) in the process.
 * Every step is idempotent (safe to retry on 503 / timeout): keys are
 * overwritten with the same values, announcements are de-duplicated, and
 * update detects a repeated iteration.
 */
#ifndef SPIRT_STEPS_H
#define SPIRT_STEPS_H

#include "runtime/runtime.h"

typedef struct {
    const char *name;     /* "gradient" - also functions/<name>/ */
    rt_handler handler;
    int idempotent;       /* safe to retry on 503 / timeout */
} step_def;

/* The registry of every step, for the in-process transport and tests. */
const step_def *steps_Find(const char *name);
const step_def *steps_All(int *n);

/* /readyz of every function: the Redis named by SPIRT_READY_REDIS (if set)
 * and the NATS server of SPIRT_NATS_URL (if set) answer. */
spStatus steps_Ready(void *ctx);

/* Credentials for every Redis and NATS a step talks to. Read from the
 * environment (SPIRT_REDIS_USER, SPIRT_REDIS_PASSWORD, SPIRT_NATS_URL,
 * SPIRT_NATS_USER, SPIRT_NATS_PASSWORD, SPIRT_DATA_DIR and
 * SPIRT_REDIS_TIMEOUT_MS, default 5000) on first use, or set explicitly by
 * an in-process driver before any step runs (the environment is then not
 * read; timeout_ms <= 0 means 5000). */
typedef struct {
    char redis_user[64];
    char redis_password[128];
    char nats_url[256];
    char nats_user[64];
    char nats_password[128];
    char data_dir[512];
    int timeout_ms;
} steps_config;

void steps_Configure(const steps_config *c);
const steps_config *steps_Config(void);

/* The handlers. */
spStatus step_Init(const rt_request *req, cJSON *res, void *ctx);
spStatus step_Minibatch(const rt_request *req, cJSON *res, void *ctx);
spStatus step_Gradient(const rt_request *req, cJSON *res, void *ctx);
spStatus step_Average(const rt_request *req, cJSON *res, void *ctx);
spStatus step_Notify(const rt_request *req, cJSON *res, void *ctx);
spStatus step_Barrier(const rt_request *req, cJSON *res, void *ctx);
spStatus step_Aggregate(const rt_request *req, cJSON *res, void *ctx);
spStatus step_Update(const rt_request *req, cJSON *res, void *ctx);
spStatus step_Evaluate(const rt_request *req, cJSON *res, void *ctx);

#endif
