/* collective.h - what the MLLESS, ScatterReduce and AllReduce steps share:
 * the live worker list, waiting for announcements, announcing, and removing
 * iteration keys that nobody will read again. Internal to src/steps.
 *
 * These architectures keep every worker's keys in the one shared Redis, so
 * the keys of finished iterations are unlinked explicitly (a TTL alone would
 * let hundreds of iterations pile up in one database). */
#ifndef SPIRT_STEPS_COLLECTIVE_H
#define SPIRT_STEPS_COLLECTIVE_H

#include "steps/step_util.h"

/* The request's "live" list (default: every worker), sorted ascending, and
 * the caller's position in it (the caller must be live). *live is malloc'd. */
spStatus live_Get(const step_req *q, int **live, int *n, int *rank);

/* Waits until every member announced (topic, t): the request's "timeout_ms"
 * (default job.sync_timeout_ms) capped by the request deadline. Members
 * that did not announce make it SP_ERR_TIMEOUT naming them (retryable).
 * On success *out (n arrivals, for their payloads) is the caller's to free
 * with collective_FreeArrivals. Adds the wait to io->sync_ms. */
spStatus collective_Await(const rt_request *req, const step_req *q, const char *topic, long t,
                          const int *members, int n, sync_arrival **out, step_io *io);
void collective_FreeArrivals(sync_arrival *a, int n);

/* Announces (topic, t) as the calling worker with an optional JSON payload. */
spStatus collective_Announce(const step_req *q, const char *topic, long t, const char *payload,
                             step_io *io);

/* UNLINKs k keys in one command (missing keys are fine), counting the
 * command's bytes in io. */
spStatus keys_Unlink(store *s, const char *const *keys, int k, step_io *io);
/* Unlinks worker w's keys of iteration t written by the shared steps:
 * mb:w:t:m and grad:w:t:m (m < M), avg:w:t and agg:w:t. Call only once
 * every reader of them is done (the worker's own next iteration). */
spStatus keys_DropIteration(const step_req *q, store *s, int w, long t, int M, step_io *io);

#endif
