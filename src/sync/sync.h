/* sync.h - synchronization over NATS JetStream.
 *
 * Subject layout (one namespace per job; <J> is the job's subject token, see
 * below):
 *   spirt.<J>.sync.<topic>.<t>.<member>   announcements, stored in the job's
 *                                         stream "SPIRT_<J>" (subjects
 *                                         "spirt.<J>.sync.>", file storage,
 *                                         max age 1 h, discard old)
 *   spirt.<J>.sync.<topic>.<t>            a decision (sync_Decide): at most
 *                                         one message, the first proposal
 *   spirt.<J>.bell.<topic>.<t>.<member>   the announcement's doorbell: core
 *                                         NATS, rung once the stream stored it
 *   spirt.<J>.hb.<member>                 heartbeats (heartbeat.h): core NATS,
 *                                         deliberately outside the stream so
 *                                         they are never stored
 * A member announces "topic t done" by publishing (with JetStream ack) to its
 * announcement subject, then rings its doorbell; a waiter subscribes to both
 * and reads spirt.<J>.sync.<topic>.<t>.* from the stream, so announcements
 * made before it subscribed are not missed and a restarted peer or driver can
 * catch up (await.c explains why the doorbell is needed). Every wait has a
 * timeout; missing members are reported, not waited for forever.
 *
 * Job names: <J> is the job id with [A-Za-z0-9-] kept, '_' written "__" and
 * any other byte (e.g. the '.' that Redis keys allow) written "_XX" (upper-case
 * hex). The mapping is one-to-one, so "a.b" and "a_b" never share a stream.
 * A job id is 1..64 bytes. Topics are 1..32 bytes of [A-Za-z0-9_-] (they are
 * program constants, so anything else is rejected, not escaped). Members are
 * ints >= 0, iterations longs >= 0.
 *
 * Each announcement carries the JetStream message id "<J>.<topic>.<t>.<m>",
 * so a retried announce within the stream's 2-minute de-dup window is dropped
 * by the server; beyond it, sync_Await keeps the FIRST announcement of a
 * member (same answer as de-dup would give).
 *
 * A sync_conn wraps one natsConnection (thread-safe in libnats), so one may be
 * shared by the threads of a function server. It reconnects forever (every
 * 250 ms) when NATS goes away; calls made meanwhile are buffered and complete
 * if the server is back within their timeout, else fail SP_ERR_UNAVAILABLE
 * (or SP_ERR_TIMEOUT when connected but unanswered): both are retryable. */
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

/* Connects; SP_ERR_UNAVAILABLE (naming the URL) if nothing answers there,
 * SP_ERR_AUTH if the server rejects the credentials. */
spStatus sync_Connect(const sync_addr *a, sync_conn **out);
void sync_Destroy(sync_conn *c);
/* Process-wide cached connection per URL + user (+ password) (libnats
 * connections are thread-safe). Owned by the cache: never sync_Destroy it. */
spStatus sync_Cached(const sync_addr *a, sync_conn **out);
/* Closes every cached connection (process shutdown, leak checks). Only call
 * when no thread uses them any more. */
void sync_CachedCloseAll(void);
/* One round trip to the server, bounded by the connection timeout. */
spStatus sync_Ping(sync_conn *c);

/* Creates the job's stream if absent (idempotent; file storage, bounded age).
 * Announce and Await create it themselves when it is missing, so calling this
 * first is optional (it just moves the cost to job start). */
spStatus sync_EnsureStream(sync_conn *c, const char *job);
/* Deletes the job's stream; SP_OK if it did not exist. */
spStatus sync_DeleteStream(sync_conn *c, const char *job);

/* Publishes member's announcement for (topic, iteration) with an optional
 * small payload (JSON text, <= 64 KiB), waiting for the JetStream ack.
 * SP_ERR_TOO_LARGE over 64 KiB. After a retryable failure the outcome is
 * unknown (libnats may still deliver the buffered message once the server is
 * back, or only the ack was lost): retry with the same payload; the message
 * id makes that harmless. */
spStatus sync_Announce(sync_conn *c, const char *job, const char *topic, long iteration,
                       int member, const void *payload, size_t len);

typedef struct {
    int member;
    int arrived;        /* 1 if the member announced before the timeout */
    char *payload;      /* NUL-terminated copy (malloc'd); NULL if none/empty */
    size_t len;
} sync_arrival;

/* Waits until every member in members[0..n-1] announced (topic, iteration) or
 * timeout_ms (> 0) passes, counted from the call. out[i] describes members[i]
 * (members not listed are ignored). Returns SP_OK in both cases (*n_arrived
 * says how many of the n came); SP_ERR_UNAVAILABLE if NATS is unreachable.
 * out[] is always initialised, so sync_ArrivalsFree(out, n) is safe after any
 * return. Blocks (no polling) on the consumer's next message. */
spStatus sync_Await(sync_conn *c, const char *job, const char *topic, long iteration,
                    const int *members, int n, int timeout_ms, sync_arrival *out,
                    int *n_arrived);
void sync_ArrivalsFree(sync_arrival *a, int n);

/* One decision for (topic, iteration), whoever proposes it: the first
 * proposal stored wins and every later sync_Decide returns that one
 * (decide.c). `proposal` is the caller's candidate (1 byte to 64 KiB) and
 * `id` (1..128 bytes of [A-Za-z0-9_-]) names its meaning: two proposals
 * with the same id must be interchangeable, since an equal proposal is
 * recognised by its id alone. *decided (malloc'd, NUL-terminated, caller
 * frees) and *decided_len get the decision; *same = 1 when it is this
 * proposal (stored by this call, or an equal one was). One round trip
 * when *same, two otherwise. Retryable failures leave the outcome unknown:
 * call again (the same decision comes back). */
spStatus sync_Decide(sync_conn *c, const char *job, const char *topic, long iteration,
                     const char *id, const void *proposal, size_t len, char **decided,
                     size_t *decided_len, int *same);
/* The decision of (topic, iteration) if one was made (*found = 0 and
 * *decided NULL if not): one round trip, for a waiter that may adopt a
 * decision instead of waiting on. */
spStatus sync_Decision(sync_conn *c, const char *job, const char *topic, long iteration,
                       char **decided, size_t *decided_len, int *found);
/* Deletes every decision of topic (all iterations), keeping the job's
 * announcements: a run resumed after its driver died must decide again the
 * iterations no peer applied yet, with the peers it has now. */
spStatus sync_ForgetDecisions(sync_conn *c, const char *job, const char *topic);

#endif
