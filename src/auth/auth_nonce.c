/* auth_nonce.c - the verifier's side of the handshake: single-use nonces in
 * Redis and the check of a peer's response. */
#include "auth/auth.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#define AUTH_MAX_TTL_MS 3600000

static spStatus nonce_Key(char *buf, size_t cap, const char *job, int peer, const char *nonce)
{
    return store_Key(buf, cap, job, "auth:nonce:%d:%s", peer, nonce);
}

static int hex64_Valid(const char *nonce)
{
    if (!nonce || strlen(nonce) != 2 * AUTH_NONCE_SIZE)
        return 0;
    for (const char *p = nonce; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

spStatus auth_Challenge(store *s, const char *job, int peer, int ttl_ms,
                        char nonce[AUTH_HEX_SIZE])
{
    if (peer < 0)
        return sp_Error(SP_ERR_INVALID, "auth: peer %d", peer);
    if (ttl_ms <= 0)
        ttl_ms = AUTH_DEFAULT_TTL_MS;
    if (ttl_ms > AUTH_MAX_TTL_MS)
        return sp_Error(SP_ERR_INVALID, "auth: a nonce lives at most %d ms", AUTH_MAX_TTL_MS);
    auth_key r; /* 32 random bytes, hex-encoded like a key */
    spStatus st = auth_NewKey(&r);
    if (st)
        return st;
    auth_KeyToHex(&r, nonce);
    char key[256];
    if ((st = nonce_Key(key, sizeof key, job, peer, nonce)))
        return st;
    int created = 0;
    if ((st = store_PutStringIfAbsent(s, key, "1", ttl_ms, &created)))
        return sp_Wrap(st, "auth: challenge");
    /* NX refused: 256 random bits collided - never in practice. */
    if (!created)
        return sp_Error(SP_ERR_INTERNAL, "auth: challenge: nonce already issued");
    return SP_OK;
}

/* Removes the nonce: *consumed = 1 when this call took it, 0 when it was
 * not there (never issued, expired or used). */
static spStatus nonce_Consume(store *s, const char *key, int *consumed)
{
    spStatus st = store_Unlink(s, &key, 1, consumed);
    return st ? sp_Wrap(st, "auth: verify") : SP_OK;
}

spStatus auth_Verify(store *s, const auth_key *master, const char *job, int peer,
                     const char *nonce, const char *mac)
{
    if (peer < 0)
        return sp_Error(SP_ERR_INVALID, "auth: peer %d", peer);
    if (!hex64_Valid(nonce))
        return sp_Error(SP_ERR_AUTH, "auth: peer %d: not a nonce this verifier issues", peer);
    char key[256];
    int consumed = 0;
    spStatus st = nonce_Key(key, sizeof key, job, peer, nonce);
    if (st || (st = nonce_Consume(s, key, &consumed)))
        return st;
    if (!consumed)
        return sp_Error(SP_ERR_AUTH, "auth: peer %d: unknown, expired or already used nonce "
                        "(ask for a new challenge)", peer);
    auth_key kp;
    char want[AUTH_HEX_SIZE];
    if ((st = auth_PeerKey(master, job, peer, &kp)) == SP_OK)
        st = auth_Respond(&kp, job, peer, nonce, want);
    memset(&kp, 0, sizeof kp);
    if (st != SP_OK)
        return st;
    int ok = mac && strlen(mac) == 2 * AUTH_KEY_SIZE &&
             CRYPTO_memcmp(mac, want, 2 * AUTH_KEY_SIZE) == 0;
    if (!ok)
        return sp_Error(SP_ERR_AUTH, "auth: peer %d: wrong response to the challenge", peer);
    return SP_OK;
}

/* ---- admission tickets ------------------------------------------------- */

spStatus auth_Admit(store *s, const char *job, int peer, int ttl_ms,
                    char ticket[AUTH_HEX_SIZE])
{
    if (peer < 0)
        return sp_Error(SP_ERR_INVALID, "auth: peer %d", peer);
    if (ttl_ms <= 0)
        ttl_ms = AUTH_TICKET_TTL_MS;
    if (ttl_ms > AUTH_MAX_TTL_MS)
        return sp_Error(SP_ERR_INVALID, "auth: a ticket lives at most %d ms", AUTH_MAX_TTL_MS);
    auth_key r;
    char key[256];
    spStatus st = auth_NewKey(&r);
    if (st || (st = store_Key(key, sizeof key, job, "auth:ticket:%d", peer)))
        return st;
    auth_KeyToHex(&r, ticket);
    st = store_PutString(s, key, ticket, ttl_ms);
    return st ? sp_Wrap(st, "auth: admit") : SP_OK;
}

spStatus auth_CheckTicket(store *s, const char *job, int peer, const char *ticket)
{
    char key[256];
    spStatus st;
    if (peer < 0)
        return sp_Error(SP_ERR_INVALID, "auth: peer %d", peer);
    if (!hex64_Valid(ticket))
        return sp_Error(SP_ERR_AUTH, "auth: peer %d: no valid admission ticket (authenticate "
                        "with the join step first)", peer);
    if ((st = store_Key(key, sizeof key, job, "auth:ticket:%d", peer)))
        return st;
    char have[AUTH_HEX_SIZE];
    size_t len = 0;
    st = store_GetString(s, key, have, sizeof have, &len);
    if (st && st != SP_ERR_NOT_FOUND)
        return sp_Wrap(st, "auth: ticket");
    /* Missing (never admitted, or expired) and wrong both read as "not admitted". */
    if (st || len != 2 * AUTH_KEY_SIZE || CRYPTO_memcmp(have, ticket, 2 * AUTH_KEY_SIZE) != 0)
        return sp_Error(SP_ERR_AUTH, "auth: peer %d: the admission ticket is unknown or "
                        "expired (authenticate with the join step again)", peer);
    return SP_OK;
}
