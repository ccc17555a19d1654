/* hmac.h - HMAC-SHA256 (RFC 2104) over OpenSSL's EVP_MAC, for peer
 * authentication; fed incrementally, so a message made of fields needs no
 * buffer to assemble it in. Constant-time comparison of MACs is OpenSSL's
 * CRYPTO_memcmp (<openssl/crypto.h>). */
#ifndef SPIRT_HMAC_H
#define SPIRT_HMAC_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "core/status.h"

#define HMAC_SHA256_SIZE 32

/* A failed step is remembered and reported by hmac_Final, so a message can
 * be fed in several updates with one check at the end. Every hmac_Init,
 * failed or not, ends with hmac_Final (which frees the context). */
typedef struct {
    EVP_MAC_CTX *ctx;
    spStatus st;
} hmac_ctx;

spStatus hmac_Init(hmac_ctx *h, const void *key, size_t key_len);
void hmac_Update(hmac_ctx *h, const void *data, size_t n);
/* Writes the MAC and frees the context, also on failure (then out is all
 * zeros: a failure can never pass for some MAC). */
spStatus hmac_Final(hmac_ctx *h, uint8_t out[HMAC_SHA256_SIZE]);
spStatus hmac_Sha256(const void *key, size_t key_len, const void *data, size_t n,
                     uint8_t out[HMAC_SHA256_SIZE]);

#endif
