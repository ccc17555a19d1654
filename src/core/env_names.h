/* env_names.h - the names of the environment variables a function's
 * configuration is read from, stated once: the steps read them
 * (steps/config.c), the runtime reads the secret ones from files
 * (runtime/rt_main.c), the local runner sets them for every function process
 * (driver/runner.c) and the driver reads the credentials for its own probes
 * (driver/train_distributed.c). What each holds is documented with
 * steps_config (steps/steps.h) and in docs/deploy.md.
 *
 * Addresses come only from here: a step request names a peer by its index
 * into ENV_REDIS_PEERS, never by an address (a request that carries one is
 * refused), so a caller cannot make a function connect somewhere else and
 * hand over the Redis or NATS credentials. */
#ifndef SPIRT_ENV_NAMES_H
#define SPIRT_ENV_NAMES_H

/* ---- where: addresses (not secrets) --------------------------------------- */
/* The per-peer Redis servers, "host:port,host:port,...": entry p is peer p's
 * database (SPIRT), at most JOB_MAX_PEER_DATABASES. */
#define ENV_REDIS_PEERS "SPIRT_REDIS_PEERS"
/* The shared Redis, "host:port": the dataset store, the join nonces, and
 * every worker's database in the MLLESS / ScatterReduce / AllReduce
 * architectures. /readyz checks that it answers. */
#define ENV_REDIS_SHARED "SPIRT_REDIS_SHARED"
/* The NATS server, "nats://host:port". /readyz checks that it answers. */
#define ENV_NATS_URL "SPIRT_NATS_URL"
/* Whether /readyz waits for the shared Redis: "shared" (the default) or
 * "none" - the address is ENV_REDIS_SHARED's, never stated twice. */
#define ENV_READY_REDIS "SPIRT_READY_REDIS"

/* ---- who: credentials ------------------------------------------------------ */
#define ENV_REDIS_USER "SPIRT_REDIS_USER"
#define ENV_REDIS_PASSWORD "SPIRT_REDIS_PASSWORD"   /* secret */
#define ENV_NATS_USER "SPIRT_NATS_USER"
#define ENV_NATS_PASSWORD "SPIRT_NATS_PASSWORD"     /* secret */
#define ENV_AUTH_KEY "SPIRT_AUTH_KEY"               /* secret: the join verifier's */
#define ENV_TOKEN "SPIRT_TOKEN"                     /* secret: bearer token of POST / */
/* A secret NAME may instead be given as NAME_FILE, the path of a file that
 * holds it (a mounted Secret); the runtime reads it into its own process. */
#define ENV_FILE_SUFFIX "_FILE"

/* ---- other settings of the steps ------------------------------------------- */
#define ENV_REDIS_TIMEOUT_MS "SPIRT_REDIS_TIMEOUT_MS"
#define ENV_DATA_DIR "SPIRT_DATA_DIR"

#endif
