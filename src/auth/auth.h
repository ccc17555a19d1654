/* auth.h - a joining peer proves who it is: challenge-response over
 * HMAC-SHA256 with a per-peer key and a fresh, single-use nonce.
 *
 * Keys. One 32-byte master key per deployment (the local runner makes a
 * random one per run; on a cluster it is a Secret given to the verifier as
 * SPIRT_AUTH_KEY, 64 hex digits). Peer p's key is derived from it,
 *     key_p = HMAC-SHA256(master, "spirt-peer-key" 0 job 0 p),
 * so the verifier needs only the master, and a peer holding key_p can
 * neither derive another peer's key nor the master.
 *
 * Handshake (the `join` step is the verifier, see steps.h):
 *   1. challenge: the verifier draws 32 random bytes (getrandom), stores
 *      {job}:auth:nonce:<p>:<nonce> in the shared Redis with SET NX and a
 *      short expiry (default 30 s) and hands out the nonce (64 hex digits);
 *   2. respond: the peer answers
 *      mac = HMAC-SHA256(key_p, "spirt-join-v1" 0 nonce 0 p 0 job) (hex);
 *   3. verify: the verifier first consumes the nonce (UNLINK: exactly one
 *      verification can ever see it), then compares mac with the expected
 *      value in constant time.
 * A replayed response finds its nonce gone; a response for another peer or
 * job, or made with another key, does not match; a nonce not used within
 * its expiry is gone too. Every refusal is SP_ERR_AUTH (401), and a failed
 * verification burns the nonce, so guesses need a fresh challenge each.
 *
 * Admission. A verified peer gets a ticket: 32 fresh random bytes stored as
 * {job}:auth:ticket:<p> for a minute. Steps that act for a joining peer
 * (rejoin) check the ticket instead of a nonce, so they stay safe to retry
 * while a replayed handshake still fails. */
#ifndef SPIRT_AUTH_H
#define SPIRT_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "store/store.h"

#define AUTH_KEY_SIZE 32
#define AUTH_NONCE_SIZE 32
#define AUTH_HEX_SIZE 65            /* 64 hex digits + NUL: keys, nonces, MACs */
#define AUTH_DEFAULT_TTL_MS 30000
#define AUTH_TICKET_TTL_MS 60000

typedef struct {
    uint8_t b[AUTH_KEY_SIZE];
} auth_key;

/* A random key (getrandom). */
spStatus auth_NewKey(auth_key *out);
void auth_KeyToHex(const auth_key *k, char out[AUTH_HEX_SIZE]);
/* Exactly 64 hex digits; anything else is SP_ERR_INVALID. */
spStatus auth_KeyFromHex(const char *hex, auth_key *out);

/* key_p derived from the master (see above). Fails only if OpenSSL does
 * (SP_ERR_INTERNAL). */
spStatus auth_PeerKey(const auth_key *master, const char *job, int peer, auth_key *out);

/* The master key of this process: set explicitly (in-process drivers and
 * tests; the environment is then not read) or from SPIRT_AUTH_KEY on first
 * use. Unset is SP_ERR_AUTH ("peer authentication is not configured"); a
 * malformed SPIRT_AUTH_KEY is SP_ERR_INVALID. */
void auth_Configure(const auth_key *master);
spStatus auth_Master(auth_key *out);

/* Verifier: a fresh nonce for peer p, stored on s (the shared Redis) for
 * ttl_ms (<= 0: AUTH_DEFAULT_TTL_MS). */
spStatus auth_Challenge(store *s, const char *job, int peer, int ttl_ms,
                        char nonce[AUTH_HEX_SIZE]);

/* Peer: the answer to `nonce` with its own key. On failure (OpenSSL's,
 * SP_ERR_INTERNAL) mac is all zeros, which equals no response. */
spStatus auth_Respond(const auth_key *peer_key, const char *job, int peer, const char *nonce,
                      char mac[AUTH_HEX_SIZE]);

/* Verifier: consumes the nonce, then checks mac against key_p derived from
 * master. SP_OK admits the peer; SP_ERR_AUTH names why not (unknown,
 * expired or used nonce; wrong response). A Redis failure is its own
 * status (retryable) - the caller starts over with a new challenge. */
spStatus auth_Verify(store *s, const auth_key *master, const char *job, int peer,
                     const char *nonce, const char *mac);

/* Verifier, after auth_Verify admitted peer p: a fresh ticket for it, valid
 * ttl_ms (<= 0: AUTH_TICKET_TTL_MS); a new ticket replaces the last. */
spStatus auth_Admit(store *s, const char *job, int peer, int ttl_ms,
                    char ticket[AUTH_HEX_SIZE]);
/* SP_OK when `ticket` is peer p's current ticket; SP_ERR_AUTH otherwise
 * (none, expired, or another one). Does not consume it. */
spStatus auth_CheckTicket(store *s, const char *job, int peer, const char *ticket);

#endif
