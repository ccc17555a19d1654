/* hmac.c - HMAC-SHA256 over OpenSSL 3's EVP_MAC; every call is checked. */
#include "auth/hmac.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

/* The failure, with OpenSSL's reason when it queued one. */
static spStatus hmac_Error(hmac_ctx *h, const char *what)
{
    char why[256] = "no reason given";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, why, sizeof why);
    ERR_clear_error(); /* nothing stale for the next caller on this thread */
    h->st = sp_Error(SP_ERR_INTERNAL, "hmac-sha256: %s: %s", what, why);
    return h->st;
}

spStatus hmac_Init(hmac_ctx *h, const void *key, size_t key_len)
{
    h->ctx = NULL;
    h->st = SP_OK;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    if (!mac)
        return hmac_Error(h, "fetching HMAC");
    h->ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac); /* the context holds its own reference */
    if (!h->ctx)
        return hmac_Error(h, "new context");
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    /* A NULL key would mean "keep the current one" (there is none yet): an
     * empty key is passed as a zero-length one. */
    if (!EVP_MAC_init(h->ctx, key_len ? key : (const void *)"", key_len, params))
        return hmac_Error(h, "init");
    return SP_OK;
}

void hmac_Update(hmac_ctx *h, const void *data, size_t n)
{
    if (h->st == SP_OK && n > 0 && !EVP_MAC_update(h->ctx, data, n))
        hmac_Error(h, "update");
}

spStatus hmac_Final(hmac_ctx *h, uint8_t out[HMAC_SHA256_SIZE])
{
    size_t got = 0;
    if (h->st == SP_OK && !EVP_MAC_final(h->ctx, out, &got, HMAC_SHA256_SIZE))
        hmac_Error(h, "final");
    else if (h->st == SP_OK && got != HMAC_SHA256_SIZE)
        h->st = sp_Error(SP_ERR_INTERNAL, "hmac-sha256: %zu bytes instead of %d", got,
                         HMAC_SHA256_SIZE);
    EVP_MAC_CTX_free(h->ctx); /* also wipes the key schedule */
    h->ctx = NULL;
    if (h->st != SP_OK)
        memset(out, 0, HMAC_SHA256_SIZE);
    return h->st;
}

spStatus hmac_Sha256(const void *key, size_t key_len, const void *data, size_t n,
                     uint8_t out[HMAC_SHA256_SIZE])
{
    hmac_ctx h;
    hmac_Init(&h, key, key_len);
    hmac_Update(&h, data, n);
    return hmac_Final(&h, out);
}
