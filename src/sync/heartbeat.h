/* heartbeat.h - liveness of a job's members over core NATS.
 *
 * A member calls sync_Heartbeat periodically (say every timeout/3); it
 * publishes an empty core-NATS message on spirt.<J>.hb.<member> (<J> as in
 * sync.h). That subject lies outside the job's stream ("spirt.<J>.sync.>"),
 * so heartbeats are never stored: they only mean something to whoever is
 * listening right now.
 *
 * A watcher listens to spirt.<J>.hb.* and remembers, per member, when it last
 * heard one (monotonic clock). hb_Watcher_Alive says 1 if that was within the
 * watcher's timeout. A member never heard since the watcher started counts as
 * not alive: callers that just created a watcher should let one timeout pass
 * (or check hb_Watcher_Heard) before declaring anyone dead. */
#ifndef SPIRT_SYNC_HEARTBEAT_H
#define SPIRT_SYNC_HEARTBEAT_H

#include "core/status.h"
#include "sync/sync.h"

/* Fire-and-forget publish (buffered by libnats while reconnecting). */
spStatus sync_Heartbeat(sync_conn *c, const char *job, int member);

typedef struct hb_watcher hb_watcher;

/* Subscribes and waits until the server registered the subscription, so a
 * heartbeat sent after this returns is seen. timeout_ms > 0. */
spStatus hb_Watcher_Create(sync_conn *c, const char *job, int timeout_ms, hb_watcher **out);
/* 1 if member was heard within the last timeout_ms, else 0 (also for NULL w
 * or a negative member). Thread-safe. */
int hb_Watcher_Alive(hb_watcher *w, int member);
/* Milliseconds since member was last heard, or -1 if never. Thread-safe. */
long long hb_Watcher_Heard(hb_watcher *w, int member);
/* Unsubscribes and waits (bounded) until the message handler can no longer
 * run. Destroy watchers before the sync_conn they were created on. */
void hb_Watcher_Destroy(hb_watcher *w);

#endif
