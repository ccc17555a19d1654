/* liveness.h - the driver's side of peer liveness: heartbeats on NATS.
 *
 * A SPIRT peer is its worker's workflow plus its own Redis. One thread per
 * peer probes that Redis (PING, bounded by the interval) and, while the
 * peer is a member of the job (its worker runs) and its database answers,
 * publishes the peer's heartbeat (sync/heartbeat.h) every interval. A peer
 * whose database dies, or whose worker failed or left, falls silent; the
 * barrier (steps/barrier.c) then excludes it once job.heartbeat_timeout_ms
 * passed instead of waiting the whole sync timeout. The probes also tell a
 * failed worker when its database is back, so it can rejoin.
 *
 * Heartbeats must come at least 4 times per heartbeat timeout: the barrier
 * trusts silence only while the caller's own heartbeat arrives every half
 * timeout (see barrier.c), so callers pass interval = timeout / 4. */
#ifndef SPIRT_LIVENESS_H
#define SPIRT_LIVENESS_H

#include "core/status.h"
#include "store/store.h"
#include "sync/sync.h"

typedef struct liveness liveness;

typedef struct {
    const char *job;            /* job id (heartbeat subjects) */
    const sync_addr *nats;
    const store_addr *peers;    /* n_peers databases, credentials filled */
    int n_peers;
    int interval_ms;            /* > 0 */
} liveness_config;

/* Starts the probe threads; every peer starts as a non-member (no
 * heartbeats until liveness_SetMember). NATS being unreachable is not an
 * error: probes run and heartbeats start once it answers. */
spStatus liveness_Start(const liveness_config *c, liveness **out);
/* Whether peer's worker is in the job (heartbeats only for members). */
void liveness_SetMember(liveness *l, int peer, int member);
/* 1 when the last two probes of peer's database succeeded. */
int liveness_DbUp(liveness *l, int peer);
/* Heartbeats published for peer so far. */
long liveness_Beats(liveness *l, int peer);
/* Stops and joins the threads, closes the connections. NULL is fine. */
void liveness_Stop(liveness *l);

#endif
