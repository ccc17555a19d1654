/* fields.h - the names of the JSON fields the driver and the steps exchange,
 * stated once. What each means is the contract in steps/steps.h; a step
 * writes these names and the driver reads them, so both spell them from
 * here. Fields only one step and its own tests know stay local to it. */
#ifndef SPIRT_STEPS_FIELDS_H
#define SPIRT_STEPS_FIELDS_H

/* ---- requests: the common fields and the executor's coordinates -------- */
#define FIELD_JOB "job"
#define FIELD_SHAPE "shape"
#define FIELD_PEER "peer"
#define FIELD_EPOCH "epoch"
#define FIELD_ITERATION "iteration"
#define FIELD_M "m"                       /* minibatch index of a fan-out */
#define FIELD_TIMEOUT_MS "timeout_ms"
#define FIELD_LIVE "live"                 /* also the context the barrier decides */
#define FIELD_JOINERS "joiners"
#define FIELD_ITERS_PER_EPOCH "iters_per_epoch"
#define FIELD_SOURCE "source"             /* evaluate, rejoin: whose model */
#define FIELD_TICKET "ticket"             /* rejoin: join's admission */
#define FIELD_RESUME "resume"             /* init */

/* ---- requests: refused ---------------------------------------------------
 * The addresses requests once carried. A request with any of them is 400:
 * a function connects only where its configuration says (steps_config). */
#define FIELD_PEERS "peers"               /* was: per-peer Redis host:port list */
#define FIELD_SHARED "shared"             /* was: the shared Redis host:port */
#define FIELD_NATS "nats"                 /* was: a NATS URL */

/* ---- answers: what every step reports ------------------------------------ */
#define FIELD_TIMINGS "timings"
#define FIELD_COMPUTE_MS "compute_ms"
#define FIELD_STORE_MS "store_ms"
#define FIELD_SYNC_MS "sync_ms"
#define FIELD_TRANSFER_MS "transfer_ms"
#define FIELD_BYTES "bytes"
#define FIELD_BYTES_IN "in"
#define FIELD_BYTES_OUT "out"
#define FIELD_CONTEXT "context"           /* merged into the iteration's later requests */
#define FIELD_TIMEOUTS "timeouts"         /* [{wait, duration_ms, members}]: waits that
                                           * ended because their time ran out */
#define FIELD_WAIT "wait"                 /* ... what was waited for */
#define FIELD_DURATION_MS "duration_ms"   /* ... how long */
#define FIELD_MEMBERS "members"           /* ... whom it still waited for */

/* ---- answers: what the executor acts on ---------------------------------- */
#define FIELD_LOSS "loss"
#define FIELD_IN_DB "in_db"               /* average, update: where the math ran */
#define FIELD_REJECTED "rejected"         /* [{peer, code, reason}] */
#define FIELD_EXCLUDED "excluded"         /* [{peer, reason}] */
#define FIELD_SELF_EXCLUDED "self_excluded" /* barrier: the decided live set leaves the
                                             * caller out; it rejoins */
#define FIELD_DECIDED_BY "decided_by"     /* barrier: whose proposal was decided */
#define FIELD_MODEL "model"               /* notify's payload: the model's checksum */
#define FIELD_REASON "reason"
#define FIELD_LEAVE "leave"               /* this worker is retired (scale-in) */
#define FIELD_STOP "stop"                 /* the job reached its goal */
#define FIELD_ACCURACY "accuracy"         /* evaluate */
#define FIELD_RESTORED_APPLIED "restored_applied" /* rejoin */
#define FIELD_TRAIN_SAMPLES "train_samples"       /* init */
#define FIELD_APPLIED "applied"                   /* init with resume */

#endif
