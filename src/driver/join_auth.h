/* join_auth.h - the driver's side of a peer (re)joining: peer p proves its
 * identity to the `join` step (auth/auth.h) before it may take part again.
 *
 * The driver acts for peer p holding only p's key (derived from the master
 * key the local runner made, or SPIRT_AUTH_KEY on a cluster): it asks the
 * join step for a fresh nonce, answers HMAC-SHA256(key_p, ...), and the
 * step, which alone checks answers, consumes the nonce and admits p with a
 * short-lived ticket. Pass the ticket as "ticket" to the step that acts for
 * the joining peer (rejoin), which checks it with auth_CheckTicket. */
#ifndef SPIRT_JOIN_AUTH_H
#define SPIRT_JOIN_AUTH_H

#include <cJSON.h>

#include "auth/auth.h"
#include "driver/invoke.h"

/* Runs the handshake for `peer` with its key (NULL: derived from
 * auth_Master() and the job id in base). base is the executor's request
 * base (job, shared, peers ...). A 503/timeout restarts the whole
 * handshake with a new challenge (at most 3 tries); a refusal is
 * SP_ERR_AUTH. On success *ticket holds the admission ticket. */
spStatus join_Authenticate(const invoker *inv, const cJSON *base, int peer,
                           const auth_key *peer_key, char ticket[AUTH_HEX_SIZE]);

#endif
