/* sha256.h - SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), for peer
 * authentication: small, dependency-free, checked against the published
 * test vectors (FIPS 180-4 examples, RFC 4231). */
#ifndef SPIRT_SHA256_H
#define SPIRT_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_SIZE 32
#define SHA256_BLOCK 64

typedef struct {
    uint32_t h[8];
    uint64_t bytes;               /* message length so far */
    uint8_t buf[SHA256_BLOCK];
    size_t used;                  /* bytes waiting in buf */
} sha256_ctx;

void sha256_Init(sha256_ctx *c);
void sha256_Update(sha256_ctx *c, const void *data, size_t n);
void sha256_Final(sha256_ctx *c, uint8_t out[SHA256_SIZE]);
void sha256(const void *data, size_t n, uint8_t out[SHA256_SIZE]);

/* Incremental HMAC-SHA256: init with the key, feed the message in parts. */
typedef struct {
    sha256_ctx inner;
    uint8_t okey[SHA256_BLOCK];   /* key ^ opad */
} hmac_ctx;

void hmac_Init(hmac_ctx *h, const void *key, size_t key_len);
void hmac_Update(hmac_ctx *h, const void *data, size_t n);
void hmac_Final(hmac_ctx *h, uint8_t out[SHA256_SIZE]);
void hmac_Sha256(const void *key, size_t key_len, const void *data, size_t n,
                 uint8_t out[SHA256_SIZE]);

/* 1 when a and b (n bytes) are equal, in time that does not depend on where
 * they differ (comparing MACs must not leak the matching prefix). */
int hmac_Equal(const void *a, const void *b, size_t n);

#endif
