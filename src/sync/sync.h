/* sync.h - synchronization over NATS JetStream.
 *
 * Each job has one stream, "SPIRT_<job>", holding subjects "spirt.<job>.>".
 * A member announces "topic t done" by publishing (with JetStream ack) to
 * spirt.<job>.<topic>.<t>.<member>; a waiter reads that subject family from
 * the start of the stream, so announcements made before it subscribed are
 * not missed and a restarted peer or driver can catch up. Every wait has a
 * timeout; missing members are reported, not waited for forever.
 *
 * A sync_conn wraps one natsConnection (thread-safe in libnats), so one may be
 * shared by the threads of a function server. */
#ifndef SPIRT_SYNC_H
#define SPIRT_SYNC_H

#include <stddef.h>

#include "core/status.h"

typedef struct {
    char url[256];       /* nats://host:port */
    char user[64];       /* "" = no credentials */
    char password[128];
    int timeout_ms;      /* connect / request timeout; 0 = 5000 */
} sync_addr;

typedef struct sync_conn sync_conn;

spStatus sync_Connect(const sync_addr *a, sync_conn **out);
void sync_Destroy(sync_conn *c);
/* Process-wide cached connection per URL (libnats connections are
 * thread-safe). Owned by the cache. */
spStatus sync_Cached(const sync_addr *a, sync_conn **out);
spStatus sync_Ping(sync_conn *c);

/* Creates the job's stream if absent (idempotent; file storage, bounded age). */
spStatus sync_EnsureStream(sync_conn *c, const char *job);
spStatus sync_DeleteStream(sync_conn *c, const char *job);

/* Publishes member's announcement for (topic, iteration) with an optional
 * small payload (JSON text, <= 64 KiB), waiting for the JetStream ack. */
spStatus sync_Announce(sync_conn *c, const char *job, const char *topic, long iteration,
                       int member, const void *payload, size_t len);

typedef struct {
    int member;
    int arrived;        /* 1 if the member announced before the timeout */
    char *payload;      /* NUL-terminated copy (malloc'd) or NULL */
    size_t len;
} sync_arrival;

/* Waits until every member in members[0..n-1] announced (topic, iteration) or
 * timeout_ms passes. out[i] describes members[i]. Returns SP_OK in both cases
 * (*n_arrived says how many came); SP_ERR_UNAVAILABLE if NATS is unreachable. */
spStatus sync_Await(sync_conn *c, const char *job, const char *topic, long iteration,
                    const int *members, int n, int timeout_ms, sync_arrival *out,
                    int *n_arrived);
void sync_ArrivalsFree(sync_arrival *a, int n);

#endif
