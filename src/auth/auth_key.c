/* auth_key.c - keys: random, hex, per-peer derivation, the process's master
 * key, and the peer's response to a challenge. */
#include "auth/auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "auth/hmac.h"
#include "core/env_names.h"

/* A peer key is an HMAC output. */
_Static_assert(AUTH_KEY_SIZE == HMAC_SHA256_SIZE, "auth_key holds one HMAC-SHA256");

spStatus auth_NewKey(auth_key *out)
{
    size_t got = 0;
    while (got < sizeof out->b) {
        ssize_t n = getrandom(out->b + got, sizeof out->b - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return sp_Error(SP_ERR_IO, "getrandom failed: %s", strerror(errno));
        got += (size_t)n;
    }
    return SP_OK;
}

static void to_Hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_Val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void auth_KeyToHex(const auth_key *k, char out[AUTH_HEX_SIZE])
{
    to_Hex(k->b, sizeof k->b, out);
}

spStatus auth_KeyFromHex(const char *hex, auth_key *out)
{
    if (!hex || strlen(hex) != 2 * AUTH_KEY_SIZE)
        return sp_Error(SP_ERR_INVALID, "a key is %d hex digits", 2 * AUTH_KEY_SIZE);
    for (int i = 0; i < AUTH_KEY_SIZE; i++) {
        int hi = hex_Val(hex[2 * i]), lo = hex_Val(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return sp_Error(SP_ERR_INVALID, "a key is %d hex digits", 2 * AUTH_KEY_SIZE);
        out->b[i] = (uint8_t)(hi << 4 | lo);
    }
    return SP_OK;
}

/* Fields of a MAC'd message are separated by NUL bytes: none of them can
 * contain one, so no two different field lists give the same bytes. */
static void hmac_Field(hmac_ctx *h, const char *s, int last)
{
    hmac_Update(h, s, strlen(s) + (last ? 0 : 1));
}

spStatus auth_PeerKey(const auth_key *master, const char *job, int peer, auth_key *out)
{
    char p[16];
    snprintf(p, sizeof p, "%d", peer);
    hmac_ctx h;
    hmac_Init(&h, master->b, sizeof master->b);
    hmac_Field(&h, "spirt-peer-key", 0);
    hmac_Field(&h, job, 0);
    hmac_Field(&h, p, 1);
    return hmac_Final(&h, out->b);
}

spStatus auth_Respond(const auth_key *peer_key, const char *job, int peer, const char *nonce,
                      char mac[AUTH_HEX_SIZE])
{
    char p[16];
    uint8_t m[HMAC_SHA256_SIZE];
    snprintf(p, sizeof p, "%d", peer);
    hmac_ctx h;
    hmac_Init(&h, peer_key->b, sizeof peer_key->b);
    hmac_Field(&h, "spirt-join-v1", 0);
    hmac_Field(&h, nonce, 0);
    hmac_Field(&h, p, 0);
    hmac_Field(&h, job, 1);
    spStatus st = hmac_Final(&h, m);
    if (st != SP_OK) {
        /* No hex digits at all: matches no response a peer can send. */
        memset(mac, 0, AUTH_HEX_SIZE);
        return st;
    }
    to_Hex(m, sizeof m, mac);
    return SP_OK;
}

/* ---- the master key of this process --------------------------------- */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static auth_key g_master;
static int g_state;        /* 0 unset, 1 set, -1 SPIRT_AUTH_KEY malformed */
static int g_explicit;

static void master_FromEnv(void)
{
    if (g_explicit)
        return;
    const char *v = getenv(ENV_AUTH_KEY);
    if (!v || !v[0])
        return;
    g_state = auth_KeyFromHex(v, &g_master) == SP_OK ? 1 : -1;
    sp_ClearError();
}

void auth_Configure(const auth_key *master)
{
    g_explicit = 1;
    g_master = *master;
    g_state = 1;
    pthread_once(&g_once, master_FromEnv);
}

spStatus auth_Master(auth_key *out)
{
    pthread_once(&g_once, master_FromEnv);
    if (g_state < 0)
        return sp_Error(SP_ERR_INVALID, "SPIRT_AUTH_KEY: expected %d hex digits",
                        2 * AUTH_KEY_SIZE);
    if (g_state == 0)
        return sp_Error(SP_ERR_AUTH, "peer authentication is not configured (SPIRT_AUTH_KEY)");
    *out = g_master;
    return SP_OK;
}
