/* steps.h - the workflow steps, as handlers callable over HTTP (one function
 * process each, bin/spirt-fn-<step>) or in-process by the driver. The steps
 * are listed once, in steps/steps.def; each is one step_def (below) in
 * src/steps/<step>.c, and every call of every step - HTTP or in-process -
 * goes through the one wrapper steps_Invoke.
 *
 * Functions are stateless: everything a step needs is named in its JSON
 * request, lives in Redis, or is the function's configuration (steps_config
 * below: where the Redis servers and NATS are, the credentials). Every
 * request carries the common fields:
 *   "job":    the job config object (job/job.h job_ToJson)
 *   "shape":  [c, h, w, classes]   model input shape, from init's answer
 *   "iteration": t (global, 0-based), "epoch": e (1-based, optional)
 *   "peer":   this peer / worker index p, 0 <= p < job.workers (and, with
 *             per-peer databases, < the number of SPIRT_REDIS_PEERS)
 * plus the step's own fields below. The number of workers N and of
 * minibatches per peer M are the job's ("workers", "minibatches" inside
 * "job"), never separate request fields, so no two steps can disagree on
 * them. A request names no address. Worker p's database is, by the job's
 * architecture (job_PerPeerDatabases): SPIRT, entry p of the function's
 * SPIRT_REDIS_PEERS; the others, the shared Redis (SPIRT_REDIS_SHARED) for
 * every worker, model keys per worker. "peers", "shared" and "nats", which
 * requests once carried, are refused (400 naming the field and the
 * variable that holds it), so no caller can make a function connect
 * elsewhere and hand over its credentials, and an old driver fails loudly.
 * Which common fields a step requires is listed with it and declared
 * in its step_def (STEP_DEFINE in src/steps/<step>.c), which the wrapper
 * checks before the step runs: a missing, mistyped or out-of-range field is
 * 400 with a message naming it, and nothing is read or written. "shape"
 * must fit the job's model (model_Create) and, where the dataset is read,
 * the dataset init loaded. A step listed with "peers" uses the databases
 * of every worker, with "shared" the shared Redis: not configured is 503
 * naming the variable (the function lacks it, not the request); a job with
 * more workers than configured peer databases, or a "peer" beyond them, is
 * 400. Every answer is a JSON object with the step's results, "timings": {"compute_ms",
 * "store_ms","sync_ms","transfer_ms"} (those that apply) and "bytes":
 * {"in","out"} moved to/from Redis, optionally "context": {...} - fields
 * the executor merges into the requests of the following steps of the same
 * iteration - and "timeouts": [{"wait","duration_ms","members"}] for each
 * of its waits that ended because its time ran out although the step still
 * answered (the executor reports every one; a wait that fails the step is
 * a 503 the executor counts from the failed attempt).
 *
 * Keys (all on the peer's Redis unless noted; iteration keys expire after
 * 600 s):
 *   {job}:data:meta                 (shared) JSON dataset meta, written last
 *   {job}:data:train:<i>, test:<i>  (shared) wire F32, dim features + label
 *   {job}:params:<p>, {job}:mom:<p> model and momentum state of peer p (the
 *                                   index keeps workers apart when they
 *                                   share one database)
 *   {job}:applied:<p>               last iteration update applied (retries)
 *   {job}:mb:<p>:<t>:<m>            minibatch m: the indices of its rows in
 *                                   the shared train split (wire I32; the
 *                                   rows themselves stay in the shared Redis)
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
 *              {"m","iters_per_epoch":I}
 *              -> {"samples":b,"slot","epoch","iters_per_epoch","key"}.
 *              Rows of shard p (dataset_ShardRange over the train set with
 *              N = job.workers shards) visited in dataset_EpochOrder(seed,
 *              epoch, p) order; slot i = (t mod I)*M + m (M =
 *              job.minibatches) covers order[i*batch, (i+1)*batch). I
 *              defaults to job_ItersPerEpoch (job/job.h; a larger I is 400,
 *              so every slot is full and all peers agree on epoch
 *              boundaries); epoch defaults to t/I + 1. Stores the slot's b
 *              row indices as "key" = mb:p:t:m (24 + 4b bytes; a retry
 *              stores the same); the rows are not copied.
 *   gradient   shape, iteration, peer, shared; {"m"} (0 <= m <
 *              job.minibatches) -> {"loss","samples","key"}. Reads mb:p:t:m
 *              (missing: 404 naming it and the minibatch step; corrupt: 400
 *              "format"; not int32, empty, more than job.batch indices or a
 *              negative one: 400) and params:p, fetches the named rows from
 *              the shared Redis (one MGET, each row verified like a tensor; a
 *              missing one is 404, a bad label 400). A non-finite gradient is
 *              400 and nothing is stored. A label-flipping attacker
 *              (job.attack, ml/attack.h) computes on labels y -> classes-1-y.
 *   average    shape, iteration, peer -> {"in_db":bool,
 *              "inputs","key"}: the mean of the job.minibatches gradients of
 *              the iteration. Each grad's size is checked first (STRLEN);
 *              the values are not scanned (they never leave the database);
 *              SPIRT.AVG refuses a non-finite mean (400, nothing written).
 *              A job.attack attacker then publishes a poisoned average
 *              instead (sign flip, Gaussian noise, a flipped byte).
 *   notify     iteration, peer; {"loss"} optional -> {}. Announces "avg"
 *              for t with the payload {"loss"?, "model"?}: "model" is the
 *              CRC32C the header of params:p holds (SPIRT; one 24-byte
 *              read), the model the peer computed t's gradients from.
 *   barrier    iteration, peer; {"live":[p...] (default all), "timeout_ms"
 *              (default job.sync_timeout_ms, capped by the request deadline)}
 *              -> {"arrived":[...],"missing":[...],"losses":[...],
 *              "decided_by":q,"self_excluded"?:true}, context {"live":
 *              [arrived]}. "arrived" is THE live set of t, the same in every
 *              barrier of t: the first proposal stored on the job's stream
 *              (sync_Decide, topic "live"); each barrier proposes the
 *              members whose announcement it saw, less those whose "model"
 *              differs from the one most of them share, and adopts the
 *              decision whatever it saw - a barrier still waiting adopts
 *              one made meanwhile. "self_excluded": the decision leaves the
 *              caller out (it stops the iteration and rejoins). The caller
 *              must be in "live" and must have announced (notify) first: if
 *              its own announcement is not on the stream the answer is 409
 *              (waiting again would not help).
 *   aggregate  shape, iteration, peer, peers; {"live":[p...]} (default all,
 *              must include the caller) -> {"used":[...],"rejected":[{peer,
 *              code,reason}],"aggregator","fallback"?,"selected"? (Krum)}.
 *              Fetches avg:q:t from each live peer's Redis, applies
 *              job.aggregator, stores agg:p:t. The caller's own average must
 *              be good (else the step fails; an attacker that poisons its
 *              average leaves its own out instead); another peer's that is
 *              missing, corrupt, mis-sized or non-finite is left out and
 *              reported in "rejected"; one whose database does not answer is
 *              fetched again until "timeout_ms" (default
 *              job.sync_timeout_ms) runs out, then left out too. A rule
 *              that cannot run with the inputs left (Krum/multi-Krum with
 *              k < f+3, trimmed mean with 2*trim >= k) falls back to the
 *              median (mean below 3 inputs) and says so in "fallback". A
 *              non-finite result is 400.
 *   update     shape, iteration, peer -> {"in_db":bool,"duplicate":bool}.
 *              params -= lr * (momentum-smoothed) agg:p:t and applied:p = t
 *              in one command (store_UpdateMarked), so no crash separates
 *              them; an iteration already applied is answered "duplicate"
 *              without applying it again, an older one is 409. Optimizer
 *              adam is 400 (the in-database update does sgd and momentum).
 *   evaluate   shape, peers, shared; {"source": peer (default "peer", else
 *              0)} -> {"accuracy","loss","samples","source",
 *              "test_set_cached"} on the test set with that peer's params.
 *              The decoded test set is cached per (shared Redis, job,
 *              upload) in the process.
 *   rejoin     shape, iteration t, peer p, peers, shared; {"ticket" (from
 *              join's verify), "source": q, "announce" (default true)} ->
 *              {"authenticated","source","joined_at","restored_applied",
 *              "params","momentum","announced"}. Peer p, excluded after a
 *              failure, comes back at t: its ticket must be p's current one
 *              (else 401, auth_CheckTicket), then it checks that q
 *              applied exactly t-1 (else 409), copies params:q and mom:q from
 *              q's Redis into params:p / mom:p on its own, sets applied:p =
 *              t-1 and announces "join" for t on NATS. "restored_applied" is
 *              what p's own database held before (e.g. from its AOF).
 * Peer authentication (auth/auth.h), the verifier of a joining peer:
 *   join       peer, shared; {"action":"challenge", "ttl_ms" (default
 *              30000)} -> {"nonce","ttl_ms"}: a fresh single-use nonce kept
 *              in the shared Redis; {"action":"verify","nonce","response"}
 *              -> {"admitted":true,"peer","ticket","ticket_ttl_ms"}:
 *              consumes the nonce, checks response = HMAC-SHA256(key_p, ...)
 *              with key_p derived from SPIRT_AUTH_KEY; a replayed, expired,
 *              foreign or wrong response is 401. The ticket admits the peer
 *              for a minute (auth_CheckTicket; rejoin can require it). Not
 *              idempotent (never retried): after a failure, start over with
 *              a new challenge.
 * Fault tolerance (SPIRT): the driver publishes each live peer's heartbeat
 * (sync/heartbeat.h) while its database answers. The barrier takes
 * "joiners": [p...] (peers outside "live" that announced "join" for t are
 * waited for too) and, with job.heartbeat_timeout_ms shorter than its
 * wait, gives up on members whose heartbeat stopped (see barrier.c); it
 * answers "excluded": [{"peer","reason"}] ("heartbeat lost" / "missed the
 * barrier" / "model differs", as the decision says) and "joined": [...].
 * init takes {"resume": true}: peers keep a model of the right size (else
 * get the initial one), the stream is kept (less the barriers' live-set
 * decisions: the resumed run decides again), and the answer adds "resumed"
 * and "applied": [last applied iteration per peer, -1 none, null when its
 * Redis did not answer].
 * Every step but join is idempotent (safe to retry on 503 / timeout): keys
 * are overwritten with the same values, announcements are de-duplicated,
 * and update detects a repeated iteration.
 *
 * MLLESS, ScatterReduce and AllReduce run on the same minibatch, gradient,
 * average and update steps with the shared Redis as every worker's database
 * (model keys per worker). Their own steps take
 * shape, iteration, peer and {"live":[w...]} (default all; sorted; must
 * include the caller; ranks below are positions in it); every wait is a
 * NATS announcement (sync_Await bounded by "timeout_ms", default
 * job.sync_timeout_ms; a worker that does not announce makes the step 503
 * naming it), never polling. Keys of finished iterations are unlinked by
 * the first step that knows nobody will read them again (the caller's own
 * mb/grad/avg/agg of t-1 in scatter, fetch_reduced and sparsify), all with
 * the 600 s TTL as a backstop.
 *   AllReduce: minibatch, gradient, average, notify ("avg"), then
 *   master_reduce  (first live worker only) waits for "avg" of every live
 *              worker, fetches their avg:w:t, stores the MEAN as
 *              {job}:reduced:<t>, announces "reduced"; unlinks reduced:<t-1>
 *              -> {"inputs","key"}
 *   fetch_reduced  waits for "reduced" from live[0], copies reduced:<t>
 *              (through the function: the worker's download of the result)
 *              to agg:p:t -> {"master"}; then update.
 *   ScatterReduce: minibatch, gradient, average, then (P params, N live;
 *   chunk r = [(P/N)*r + min(P%N, r), + P/N + (r < P%N)), steps/chunks.h)
 *   scatter    avg:p:t split into N chunks: {job}:chunk:<c>:<p>:<t> for
 *              owner rank c; announces "scattered" -> {"chunks"}
 *   chunk_reduce  owner r = the caller's rank: waits for "scattered" of all
 *              live, averages chunk:r:w:t over them into {job}:merged:<r>:<t>,
 *              announces "merged"; unlinks its chunks and merged of t-1
 *              -> {"chunk","offset","length","key"}
 *   chunk_gather  waits for "merged" of all live, concatenates merged:c:t
 *              into agg:p:t -> {"chunks","key"}; then update.
 *   MLLESS (significance filter and policy: steps/mlless.h): minibatch,
 *   gradient, average, then
 *   sparsify   own update: params:p -= lr * avg:p:t with the job's
 *              optimizer (in the database, MARK applied:p t); then the
 *              filter (SPIRT.FILTER): acc = acc:p:<t-1> (zeros at t = 0;
 *              with job.scale_in plus the accumulator of a worker the
 *              decision of t-1 removed, when the caller is its heir) +
 *              lr * (mom:p with momentum, else avg:p:t); significant
 *              coordinates (|acc_i| > v/sqrt(t+1) * |w_i|, v =
 *              job.significance, w = params:p after the update) go to
 *              {job}:sparse:<p>:<t> (wire WIRE_SPARSE_F32, possibly empty)
 *              and are reset; the rest is stored as {job}:acc:<p>:<t>.
 *              Announces "report" {"loss" (the request's "loss", the
 *              iteration's mean gradient loss),"has_update","sent"}
 *              -> {"sent","params","threshold","inherited_from"?}
 *   supervisor (first live worker only) waits for "report" of all live,
 *              decides and announces "updates" with the decision {"t",
 *              "workers","updates":[w...],"live":[...],"remove","cursor",
 *              "stop","loss","below"} (also {job}:decision:<t>; state in
 *              {job}:supervisor; stop once the mean loss was below
 *              job.target_loss for MLLESS_STOP_STEPS iterations in a row
 *              (steps/mlless.h); scale-in with
 *              job.scale_in) -> {"decision","duplicate"}
 *   apply      for u = t - job.slack (none in an epoch's first slack
 *              iterations; at an epoch's last, every u left up to t): waits
 *              for "updates" of u from live[0], sums the listed sparse:w:u
 *              of the other workers into the sparse agg:p:t and adds it to
 *              params:p (SPIRT.UPDATE lr 1, MARK added:p u); when u's
 *              decision removes a worker r != p, adds acc:r:u (MARK
 *              absorbed:p u) -> {"updates","pairs","workers","merged_from"?,
 *              "applied_from","applied_to"}, context {"live"}, "leave": true
 *              for the removed worker, "stop": true when the supervisor
 *              stops.
 */
#ifndef SPIRT_STEPS_H
#define SPIRT_STEPS_H

#include "runtime/runtime.h"
#include "store/store.h"

/* What the wrapper hands a step's run function: the parsed request, the
 * answer's timings and what the step_def asked for (steps/step_ctx.h). */
typedef struct step_ctx step_ctx;

/* One entry of the step table (curl's protocol handlers are the model: each
 * step file defines its own, a registry lists them). */
typedef struct {
    const char *name;     /* "gradient": bin/spirt-fn-gradient, image spirt-gradient */
    rt_handler handler;   /* step_<Fn>: steps_Invoke(this step_def, ...) */
    int idempotent;       /* safe to retry on 503 / timeout */
    /* The request shape: REQ_* fields req_Parse checks (steps/request.h) and
     * STEP_* work the wrapper does first (steps/step_ctx.h). */
    unsigned need;
    /* The step's own logic, run after those checks passed. */
    spStatus (*run)(step_ctx *c, cJSON *res);
} step_def;

/* The one wrapper around every step: parses and checks the fields `need`
 * declares (a bad request is 400 before the step touches Redis or NATS),
 * does the STEP_* work, runs def->run and, when it succeeds, adds
 * "timings" and "bytes" to the answer. Every step_<Fn> is this call. */
spStatus steps_Invoke(const step_def *def, const rt_request *req, cJSON *res);

/* Every step of steps.def: step_def_<name> and its entry point step_<Fn>,
 * an rt_handler for the runtime (functions) and the in-process driver. */
#define STEP(name, Fn)                      \
    extern const step_def step_def_##name; \
    spStatus step_##Fn(const rt_request *req, cJSON *res, void *ctx);
#include "steps/steps.def"
#undef STEP

/* The registry of every step (steps/registry.c), for the in-process
 * transport and tests. A function binary does not use it, so it links only
 * its own step. */
const step_def *steps_Find(const char *name);
const step_def *const *steps_All(int *n);

/* /readyz of every function: its configuration holds no malformed address,
 * and the shared Redis (unless SPIRT_READY_REDIS=none) and the NATS server
 * it is configured with (when it is) answer. */
spStatus steps_Ready(void *ctx);

/* The function's configuration: where the Redis servers and the NATS server
 * are and the credentials for them. Read from the environment on first use
 * - the variables are named once, in core/env_names.h: SPIRT_REDIS_PEERS,
 * SPIRT_REDIS_SHARED, SPIRT_NATS_URL, SPIRT_REDIS_USER,
 * SPIRT_REDIS_PASSWORD, SPIRT_NATS_USER, SPIRT_NATS_PASSWORD,
 * SPIRT_DATA_DIR, SPIRT_REDIS_TIMEOUT_MS (default 5000) and
 * SPIRT_READY_REDIS ("shared", the default, or "none") - or set
 * explicitly by an in-process driver or a test before any step runs (the
 * environment is then not read; timeout_ms <= 0 means 5000). These are
 * the only addresses a step connects to: a request names a peer by its
 * index, and one that carries an address is refused (steps/request.h). */
#define STEPS_PEERS_CHARS 8192 /* room for JOB_MAX_PEER_DATABASES addresses */
typedef struct {
    /* "host:port,host:port,...": entry p is peer p's own Redis (SPIRT); at
     * most JOB_MAX_PEER_DATABASES. "" = none. */
    char redis_peers[STEPS_PEERS_CHARS];
    /* "host:port" of the shared Redis (the dataset; every worker's database
     * in the architectures without per-peer ones). "" = none. */
    char redis_shared[256];
    char redis_user[64];
    char redis_password[128];
    char nats_url[256];       /* "nats://host:port"; "" = none */
    char nats_user[64];
    char nats_password[128];
    char data_dir[512];
    int timeout_ms;
    int ready_skip_redis;     /* /readyz does not wait for the shared Redis */
} steps_config;

/* Replaces the configuration. SP_ERR_INVALID naming the setting when an
 * address is malformed; the steps that need it then answer that (503). */
spStatus steps_Configure(const steps_config *c);
const steps_config *steps_Config(void);

/* The configured databases with the configured credentials and timeout:
 * the per-peer list (*n entries, index = peer) and the shared Redis. Not
 * configured, or malformed, is SP_ERR_UNAVAILABLE (503) naming the
 * variable: the request is right, the function cannot serve it as
 * configured - an operator's fix, like a dependency that is down, and
 * /readyz of a malformed one says so too. */
spStatus steps_PeerDbs(const store_addr **dbs, int *n);
spStatus steps_SharedDb(const store_addr **db);

#endif
