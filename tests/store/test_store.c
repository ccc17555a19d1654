/* test_store.c - the Redis store against a real redis-server: round trips,
 * pipelining, TTLs, validation of what comes back, credentials and dead or
 * stalled servers. */
#include <signal.h>
#include <stdio.h>

#include "store_testutil.h"

#define PASSWORD "store-test-pw"

typedef struct {
    fx_server srv;
    store *s;
} suite;

static int suite_Up(void **state)
{
    suite *t = calloc(1, sizeof *t);
    if (!t || fx_StartRedis(&t->srv, PASSWORD, 0, 0) != 0)
        return -1;
    store_addr a;
    tu_Addr(&a, &t->srv, PASSWORD);
    if (store_Connect(&a, &t->s) != SP_OK)
        return -1;
    *state = t;
    return 0;
}

static int suite_Down(void **state)
{
    suite *t = *state;
    store_Destroy(t->s);
    fx_Stop(&t->srv);
    free(t);
    return 0;
}

static void test_parse_addr(void **state)
{
    (void)state;
    store_addr a;
    assert_int_equal(store_ParseAddr("10.1.2.3:6380", &a), SP_OK);
    assert_string_equal(a.host, "10.1.2.3");
    assert_int_equal(a.port, 6380);
    assert_string_equal(a.password, "");
    assert_int_equal(store_ParseAddr("redis-peer-0.redis", &a), SP_OK);
    assert_string_equal(a.host, "redis-peer-0.redis");
    assert_int_equal(a.port, 6379);
    assert_int_equal(store_ParseAddr("[::1]:7000", &a), SP_OK);
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.port, 7000);
    const char *bad[] = {"", ":6379", "h:0", "h:70000", "h:12x", "h:", "[::1", "[::1]x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(store_ParseAddr(bad[i], &a), SP_ERR_INVALID);
}

static void test_key(void **state)
{
    (void)state;
    char k[64];
    assert_int_equal(store_Key(k, sizeof k, "job-1.a_b", "grad:%d:%ld", 3, 17L), SP_OK);
    assert_string_equal(k, "{job-1.a_b}:grad:3:17");
    assert_int_equal(store_Key(k, sizeof k, "bad job", "x"), SP_ERR_INVALID);
    assert_int_equal(store_Key(k, sizeof k, "a}b", "x"), SP_ERR_INVALID);
    assert_int_equal(store_Key(k, sizeof k, "", "x"), SP_ERR_INVALID);
    assert_int_equal(store_Key(k, 12, "job", "grad:%d", 123456), SP_ERR_INVALID);
    assert_string_equal(k, ""); /* never a silently truncated key */
}

static void test_put_get_roundtrip(void **state)
{
    suite *t = *state;
    size_t n = 100003;
    float *x = tu_Random(n, 1, 3.0f);
    uint64_t out0 = store_BytesOut(t->s), in0 = store_BytesIn(t->s);
    tu_PutOk(t->s, "{t}:rt", x, n, 0);
    assert_true(store_BytesOut(t->s) - out0 >= n * 4 + WIRE_HEADER_SIZE);
    float *y = tu_GetOk(t->s, "{t}:rt", n);
    assert_true(store_BytesIn(t->s) - in0 >= n * 4 + WIRE_HEADER_SIZE);
    assert_memory_equal(x, y, n * sizeof *x);
    free(y);
    /* expect_n = 0 accepts whatever length is stored. */
    size_t got;
    assert_int_equal(store_GetTensor(t->s, "{t}:rt", 0, &y, &got), SP_OK);
    assert_int_equal(got, n);
    free(y);
    /* An empty tensor is a valid tensor. */
    tu_PutOk(t->s, "{t}:empty", x, 0, 0);
    assert_int_equal(store_GetTensor(t->s, "{t}:empty", 0, &y, &got), SP_OK);
    assert_int_equal(got, 0);
    free(y);
    free(x);
}

static void test_get_rejects_wrong_size_and_nonfinite(void **state)
{
    suite *t = *state;
    float x[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    tu_PutOk(t->s, "{t}:ten", x, 10, 0);
    float *y = NULL;
    size_t n;
    assert_int_equal(store_GetTensor(t->s, "{t}:ten", 12, &y, &n), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "{t}:ten"));
    assert_null(y);
    x[4] = NAN;
    tu_PutOk(t->s, "{t}:nan", x, 10, 0);
    assert_int_equal(store_GetTensor(t->s, "{t}:nan", 10, &y, &n), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "index 4"));
    /* Another dtype behind the key is not a float tensor. */
    int32_t labels[3] = {1, 2, 3};
    uint8_t *blob;
    size_t len;
    assert_int_equal(wire_Encode(WIRE_I32, labels, 3, 0, &blob, &len), SP_OK);
    assert_int_equal(store_PutBlob(t->s, "{t}:i32", blob, len, 0), SP_OK);
    free(blob);
    assert_int_equal(store_GetTensor(t->s, "{t}:i32", 0, &y, &n), SP_ERR_INVALID);
    /* Each refusal read the whole value: the connection is still in step. */
    assert_int_equal(store_Ping(t->s), SP_OK);
    assert_int_equal(store_GetTensor(t->s, "{t}:ten", 10, &y, &n), SP_OK);
    assert_int_equal(n, 10);
    free(y);
}

/* Tensors far larger than any socket buffer go out and come back whole
 * (the store writes and reads them in many pieces), alone and pipelined. */
static void test_large_tensors(void **state)
{
    suite *t = *state;
    enum { N = 3 << 20 }; /* 12 MB */
    float *x = tu_Random(N, 7, 3.0f), *y = NULL, *z = calloc(N, sizeof(float));
    tu_PutOk(t->s, "{t}:big", x, N, 60);
    size_t n = 0;
    assert_int_equal(store_GetTensor(t->s, "{t}:big", N, &y, &n), SP_OK);
    assert_int_equal(n, N);
    assert_memory_equal(x, y, (size_t)N * sizeof(float));
    tu_PutOk(t->s, "{t}:small", x, 5, 0);
    const char *keys[3] = {"{t}:big", "{t}:small", "{t}:big"};
    float *outs[3] = {y, z, z};
    int ok[3];
    memset(y, 0, (size_t)N * sizeof(float));
    assert_int_equal(store_GetTensorsInto(t->s, keys, 3, N, outs, ok), SP_OK);
    assert_true(ok[0] && !ok[1] && ok[2]);
    assert_memory_equal(x, y, (size_t)N * sizeof(float));
    assert_memory_equal(x, z, (size_t)N * sizeof(float));
    assert_int_equal(store_Ping(t->s), SP_OK);
    free(x);
    free(y);
    free(z);
}

static void test_multi_get_pipelined(void **state)
{
    suite *t = *state;
    enum { K = 6, N = 5000 };
    char keys[K][32];
    const char *kp[K];
    float *want[K], *outs[K];
    for (int i = 0; i < K; i++) {
        snprintf(keys[i], sizeof keys[i], "{t}:mg:%d", i);
        kp[i] = keys[i];
        want[i] = tu_Random(N, 100 + (uint64_t)i, 1.0f);
        outs[i] = calloc(N, sizeof(float));
        tu_PutOk(t->s, keys[i], want[i], N, 0);
    }
    int ok[K];
    assert_int_equal(store_GetTensorsInto(t->s, kp, K, N, outs, ok), SP_OK);
    for (int i = 0; i < K; i++) {
        assert_int_equal(ok[i], 1);
        assert_memory_equal(outs[i], want[i], N * sizeof(float));
    }
    /* One key missing, one of the wrong length: the rest still arrive. */
    assert_int_equal(store_Delete(t->s, keys[2]), SP_OK);
    tu_PutOk(t->s, keys[4], want[4], N - 1, 0);
    for (int i = 0; i < K; i++)
        memset(outs[i], 0, N * sizeof(float));
    assert_int_equal(store_GetTensorsInto(t->s, kp, K, N, outs, ok), SP_OK);
    for (int i = 0; i < K; i++) {
        assert_int_equal(ok[i], i != 2 && i != 4);
        if (ok[i])
            assert_memory_equal(outs[i], want[i], N * sizeof(float));
    }
    /* Without ok[] any failure fails the call, reporting the first one;
     * the connection stays in step for the next command. */
    assert_int_equal(store_GetTensorsInto(t->s, kp, K, N, outs, NULL), SP_ERR_NOT_FOUND);
    assert_non_null(strstr(sp_LastError(), keys[2]));
    assert_int_equal(store_Ping(t->s), SP_OK);
    for (int i = 0; i < K; i++) {
        free(want[i]);
        free(outs[i]);
    }
}

static void test_ttl_is_set(void **state)
{
    suite *t = *state;
    float x[4] = {1, 2, 3, 4};
    tu_PutOk(t->s, "{t}:ttl", x, 4, 120);
    long long ttl = tu_Int(t->s, "TTL %s", "{t}:ttl");
    assert_true(ttl > 0 && ttl <= 120);
    tu_PutOk(t->s, "{t}:ttl", x, 4, 0); /* overwritten without a TTL: persistent */
    assert_int_equal(tu_Int(t->s, "TTL %s", "{t}:ttl"), -1);
    assert_int_equal(store_PutBlob(t->s, "{t}:b", "xy", 2, 30), SP_OK);
    ttl = tu_Int(t->s, "TTL %s", "{t}:b");
    assert_true(ttl > 0 && ttl <= 30);
    assert_int_equal(store_PutTensor(t->s, "{t}:ttl", x, 4, -1), SP_ERR_INVALID);
}

static void test_missing_key_not_found(void **state)
{
    suite *t = *state;
    float *y;
    size_t n;
    uint8_t *b;
    assert_int_equal(store_GetTensor(t->s, "{t}:nope", 0, &y, &n), SP_ERR_NOT_FOUND);
    assert_non_null(strstr(sp_LastError(), "{t}:nope"));
    assert_int_equal(store_GetBlob(t->s, "{t}:nope", &b, &n), SP_ERR_NOT_FOUND);
    int e = 1;
    assert_int_equal(store_Exists(t->s, "{t}:nope", &e), SP_OK);
    assert_int_equal(e, 0);
    assert_int_equal(store_Delete(t->s, "{t}:nope"), SP_OK); /* idempotent */
}

static void test_corrupt_blob_is_format_error(void **state)
{
    suite *t = *state;
    float *y;
    size_t n;
    /* Not a tensor at all, planted with plain SET. */
    freeReplyObject(tu_Cmd(t->s, "SET %s %b", "{t}:junk", "hello, garbage", (size_t)14));
    assert_int_equal(store_GetTensor(t->s, "{t}:junk", 0, &y, &n), SP_ERR_FORMAT);
    assert_non_null(strstr(sp_LastError(), "{t}:junk"));
    /* A real tensor with one payload bit flipped: the checksum catches it. */
    float x[64];
    for (int i = 0; i < 64; i++)
        x[i] = (float)i;
    uint8_t *blob;
    size_t len;
    assert_int_equal(wire_Encode(WIRE_F32, x, 64, 0, &blob, &len), SP_OK);
    blob[WIRE_HEADER_SIZE + 77] ^= 0x10;
    freeReplyObject(tu_Cmd(t->s, "SET %s %b", "{t}:flip", blob, len));
    assert_int_equal(store_GetTensor(t->s, "{t}:flip", 64, &y, &n), SP_ERR_FORMAT);
    /* And truncated. */
    blob[WIRE_HEADER_SIZE + 77] ^= 0x10;
    freeReplyObject(tu_Cmd(t->s, "SET %s %b", "{t}:cut", blob, len - 3));
    assert_int_equal(store_GetTensor(t->s, "{t}:cut", 0, &y, &n), SP_ERR_FORMAT);
    free(blob);
    /* A key of another Redis type is bad input, not a crash. */
    freeReplyObject(tu_Cmd(t->s, "RPUSH %s a", "{t}:list"));
    assert_int_equal(store_GetTensor(t->s, "{t}:list", 0, &y, &n), SP_ERR_INVALID);
    assert_int_equal(store_Ping(t->s), SP_OK);
}

static void test_blob_exists_delete(void **state)
{
    suite *t = *state;
    const char data[] = "bin\0ary\r\n";
    assert_int_equal(store_PutBlob(t->s, "{t}:blob", data, sizeof data, 0), SP_OK);
    uint8_t *b;
    size_t len;
    assert_int_equal(store_GetBlob(t->s, "{t}:blob", &b, &len), SP_OK);
    assert_int_equal(len, sizeof data);
    assert_memory_equal(b, data, sizeof data);
    free(b);
    int e = 0;
    assert_int_equal(store_Exists(t->s, "{t}:blob", &e), SP_OK);
    assert_int_equal(e, 1);
    assert_int_equal(store_Delete(t->s, "{t}:blob"), SP_OK);
    assert_int_equal(store_Exists(t->s, "{t}:blob", &e), SP_OK);
    assert_int_equal(e, 0);
}

/* Short strings with a millisecond expiry (auth nonces and tickets). */
static void test_strings(void **state)
{
    suite *t = *state;
    int created = -1;
    assert_int_equal(store_PutStringIfAbsent(t->s, "{t}:nonce", "1", 30000, &created), SP_OK);
    assert_int_equal(created, 1);
    long long ms = tu_Int(t->s, "PTTL %s", "{t}:nonce");
    assert_true(ms > 0 && ms <= 30000);
    assert_int_equal(store_PutStringIfAbsent(t->s, "{t}:nonce", "2", 30000, &created), SP_OK);
    assert_int_equal(created, 0);
    char buf[8];
    size_t len = 0;
    assert_int_equal(store_GetString(t->s, "{t}:nonce", buf, sizeof buf, &len), SP_OK);
    assert_string_equal(buf, "1"); /* NX left it alone */
    assert_int_equal(len, 1);
    /* PutString replaces, and without a ttl the key is persistent. */
    assert_int_equal(store_PutString(t->s, "{t}:nonce", "a-longer-value", 0), SP_OK);
    assert_int_equal(tu_Int(t->s, "PTTL %s", "{t}:nonce"), -1);
    assert_int_equal(store_GetString(t->s, "{t}:nonce", buf, sizeof buf, &len), SP_OK);
    assert_string_equal(buf, "a-longe"); /* cut to the buffer ... */
    assert_int_equal(len, 14);            /* ... but the length shows it */
    assert_int_equal(store_GetString(t->s, "{t}:none", buf, sizeof buf, &len), SP_ERR_NOT_FOUND);
    freeReplyObject(tu_Cmd(t->s, "RPUSH %s a", "{t}:slist"));
    assert_int_equal(store_GetString(t->s, "{t}:slist", buf, sizeof buf, &len), SP_ERR_INVALID);
    assert_int_equal(store_PutString(t->s, "{t}:x", "v", -1), SP_ERR_INVALID);
    assert_int_equal(store_Ping(t->s), SP_OK);
}

/* Many keys in one command or pipeline: rows stored and fetched, lengths,
 * UNLINK counts, and a bad key among good ones. */
static void test_batches(void **state)
{
    suite *t = *state;
    enum { K = 5, N = 7 };
    char names[K][32];
    const char *keys[K];
    const void *data[K];
    uint8_t *blobs[K];
    size_t lens[K];
    float rows[K * N], got[K * N];
    for (int i = 0; i < K; i++) {
        for (int j = 0; j < N; j++)
            rows[i * N + j] = (float)(i * 100 + j);
        snprintf(names[i], sizeof names[i], "{t}:row:%d", i);
        keys[i] = names[i];
        assert_int_equal(wire_Encode(WIRE_F32, rows + i * N, N, 0, &blobs[i], &lens[i]), SP_OK);
        data[i] = blobs[i];
    }
    assert_int_equal(store_PutBlobs(t->s, keys, data, lens, K, 60), SP_OK);
    long long ttl = tu_Int(t->s, "TTL %s", keys[K - 1]);
    assert_true(ttl > 0 && ttl <= 60);
    assert_int_equal(store_GetRowsInto(t->s, keys, K, N, got), SP_OK);
    assert_memory_equal(got, rows, sizeof rows);
    size_t sl[K + 1];
    const char *with_missing[K + 1] = {keys[0], keys[1], keys[2], keys[3], keys[4], "{t}:none"};
    assert_int_equal(store_GetBlobLens(t->s, with_missing, K + 1, sl), SP_OK);
    for (int i = 0; i < K; i++)
        assert_int_equal(sl[i], lens[i]);
    assert_int_equal(sl[K], 0);
    /* A missing row names itself; a corrupt one is a format error. */
    assert_int_equal(store_GetRowsInto(t->s, with_missing + 1, K, N, got), SP_ERR_NOT_FOUND);
    assert_non_null(strstr(sp_LastError(), "{t}:none"));
    blobs[2][WIRE_HEADER_SIZE + 3] ^= 0x40;
    freeReplyObject(tu_Cmd(t->s, "SET %s %b", keys[2], blobs[2], lens[2]));
    assert_int_equal(store_GetRowsInto(t->s, keys, K, N, got), SP_ERR_FORMAT);
    assert_int_equal(store_GetRowsInto(t->s, keys, K, N + 1, got), SP_ERR_INVALID);
    /* A list among strings: STRLEN's WRONGTYPE is bad input. */
    freeReplyObject(tu_Cmd(t->s, "RPUSH %s a", "{t}:blist"));
    const char *with_list[2] = {keys[0], "{t}:blist"};
    assert_int_equal(store_GetBlobLens(t->s, with_list, 2, sl), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "{t}:blist"));
    /* UNLINK says how many existed: a single key tells who took it. */
    int removed = -1;
    assert_int_equal(store_Unlink(t->s, with_missing + 3, 3, &removed), SP_OK);
    assert_int_equal(removed, 2);
    assert_int_equal(store_Unlink(t->s, keys + 3, 1, &removed), SP_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(store_Unlink(t->s, keys, 0, NULL), SP_OK);
    assert_int_equal(store_Ping(t->s), SP_OK); /* every reply was read */
    for (int i = 0; i < K; i++)
        free(blobs[i]);
}

static void test_credentials(void **state)
{
    suite *t = *state;
    store_addr a;
    store *s = NULL;
    tu_Addr(&a, &t->srv, "wrong-password");
    assert_int_equal(store_Connect(&a, &s), SP_ERR_AUTH);
    assert_null(s);
    assert_non_null(strstr(sp_LastError(), "AUTH"));
    /* No password at all: the first command is refused as unauthenticated. */
    tu_Addr(&a, &t->srv, NULL);
    assert_int_equal(store_Connect(&a, &s), SP_OK);
    assert_int_equal(store_Ping(s), SP_ERR_AUTH);
    store_Destroy(s);
    /* An ACL user with its own password. */
    redisReply *r = tu_Cmd(t->s, "ACL SETUSER spirtw on >%s ~* +@all", "w-pass");
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    tu_Addr(&a, &t->srv, "w-pass");
    strcpy(a.user, "spirtw");
    assert_int_equal(store_Connect(&a, &s), SP_OK);
    assert_int_equal(store_Ping(s), SP_OK);
    store_Destroy(s);
    tu_Addr(&a, &t->srv, PASSWORD); /* the default user's password, wrong for spirtw */
    strcpy(a.user, "spirtw");
    assert_int_equal(store_Connect(&a, &s), SP_ERR_AUTH);
}

static void test_server_down_is_unavailable(void **state)
{
    (void)state;
    store_addr a;
    fx_server nobody = {.port = fx_FreePort()};
    tu_Addr(&a, &nobody, NULL);
    a.timeout_ms = 2000;
    store *s = NULL;
    spStatus st = store_Connect(&a, &s);
    assert_int_equal(st, SP_ERR_UNAVAILABLE);
    assert_true(sp_IsRetryable(st));
    char where[64];
    snprintf(where, sizeof where, "127.0.0.1:%d", nobody.port);
    assert_non_null(strstr(sp_LastError(), where));
    assert_int_equal(store_Cached(&a, &s), SP_ERR_UNAVAILABLE);
}

static void test_server_dies_midway(void **state)
{
    (void)state;
    fx_server srv;
    assert_int_equal(fx_StartRedis(&srv, NULL, 0, 0), 0);
    store *s = tu_Connect(&srv, NULL);
    assert_int_equal(store_Ping(s), SP_OK);
    fx_Kill(&srv, SIGKILL, 0);
    float x[3] = {1, 2, 3};
    assert_int_equal(store_PutTensor(s, "{t}:x", x, 3, 0), SP_ERR_UNAVAILABLE);
    /* The dead context fails fast from then on. */
    assert_int_equal(store_Ping(s), SP_ERR_UNAVAILABLE);
    store_Destroy(s);
}

static void test_stalled_server_times_out(void **state)
{
    (void)state;
    fx_server srv;
    assert_int_equal(fx_StartRedis(&srv, NULL, 0, 0), 0);
    store_addr a;
    tu_Addr(&a, &srv, NULL);
    a.timeout_ms = 300;
    store *s = NULL;
    assert_int_equal(store_Connect(&a, &s), SP_OK);
    /* A stopped process still completes TCP handshakes but never answers. */
    kill(srv.pid, SIGSTOP);
    spStatus st = store_Ping(s);
    kill(srv.pid, SIGCONT);
    assert_int_equal(st, SP_ERR_TIMEOUT);
    assert_true(sp_IsRetryable(st));
    store_Destroy(s);
    fx_Stop(&srv);
}

/* A server that stops answering in the middle of a large SET or GET is a
 * timeout, the connection is not used again, and a new one works once the
 * server is back. */
static void test_stall_during_large_transfer(void **state)
{
    (void)state;
    fx_server srv;
    assert_int_equal(fx_StartRedis(&srv, NULL, 0, 0), 0);
    store_addr a;
    tu_Addr(&a, &srv, NULL);
    a.timeout_ms = 300;
    enum { N = 16 << 20 }; /* 64 MB: more than the socket buffers hold */
    float *x = tu_Random(N, 9, 1.0f);
    store *s = NULL;
    assert_int_equal(store_Connect(&a, &s), SP_OK);
    kill(srv.pid, SIGSTOP);
    spStatus st = store_PutTensor(s, "{t}:huge", x, N, 0);
    kill(srv.pid, SIGCONT);
    assert_int_equal(st, SP_ERR_TIMEOUT);
    assert_int_equal(store_Ping(s), SP_ERR_UNAVAILABLE); /* broken, not reused */
    store_Destroy(s);
    a.timeout_ms = 5000;
    assert_int_equal(store_Connect(&a, &s), SP_OK);
    tu_PutOk(s, "{t}:huge", x, N, 0);
    store_Destroy(s);
    a.timeout_ms = 300;
    assert_int_equal(store_Connect(&a, &s), SP_OK);
    float *y = NULL;
    size_t n;
    kill(srv.pid, SIGSTOP);
    st = store_GetTensor(s, "{t}:huge", N, &y, &n);
    kill(srv.pid, SIGCONT);
    assert_int_equal(st, SP_ERR_TIMEOUT);
    assert_null(y);
    assert_true(sp_IsRetryable(st));
    store_Destroy(s);
    free(x);
    fx_Stop(&srv);
}

static void test_cached_reuses_and_reconnects(void **state)
{
    suite *t = *state;
    fx_server srv;
    assert_int_equal(fx_StartRedis(&srv, NULL, 0, 0), 0);
    store_addr a, b;
    tu_Addr(&a, &srv, NULL);
    tu_Addr(&b, &t->srv, PASSWORD);
    store *s1, *s2, *s3;
    assert_int_equal(store_Cached(&a, &s1), SP_OK);
    assert_int_equal(store_Cached(&a, &s2), SP_OK);
    assert_ptr_equal(s1, s2);
    assert_int_equal(store_Cached(&b, &s3), SP_OK);
    assert_ptr_not_equal(s1, s3);
    float x[3] = {1, 2, 3};
    tu_PutOk(s1, "{t}:c", x, 3, 0);
    uint64_t sent = store_BytesOut(s1);
    /* The server restarts behind an idle cached connection: the cache
     * notices and hands out a fresh one instead of a failing one. */
    fx_Kill(&srv, SIGKILL, 1);
    assert_int_equal(fx_RestartRedis(&srv, NULL, 0, 0), 0);
    assert_int_equal(store_Cached(&a, &s1), SP_OK);
    assert_int_equal(store_Ping(s1), SP_OK);
    assert_true(store_BytesOut(s1) < sent); /* counters restart with the connection */
    /* A connection that failed mid-command is replaced too. */
    fx_Kill(&srv, SIGKILL, 1);
    assert_int_equal(store_Ping(s1), SP_ERR_UNAVAILABLE);
    assert_int_equal(fx_RestartRedis(&srv, NULL, 0, 0), 0);
    assert_int_equal(store_Cached(&a, &s1), SP_OK);
    assert_int_equal(store_Ping(s1), SP_OK);
    store_ReleaseCached();
    fx_Stop(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_key),
        cmocka_unit_test(test_put_get_roundtrip),
        cmocka_unit_test(test_get_rejects_wrong_size_and_nonfinite),
        cmocka_unit_test(test_multi_get_pipelined),
        cmocka_unit_test(test_large_tensors),
        cmocka_unit_test(test_ttl_is_set),
        cmocka_unit_test(test_missing_key_not_found),
        cmocka_unit_test(test_corrupt_blob_is_format_error),
        cmocka_unit_test(test_blob_exists_delete),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_server_down_is_unavailable),
        cmocka_unit_test(test_server_dies_midway),
        cmocka_unit_test(test_stalled_server_times_out),
        cmocka_unit_test(test_stall_during_large_transfer),
        cmocka_unit_test(test_cached_reuses_and_reconnects),
    };
    return cmocka_run_group_tests(tests, suite_Up, suite_Down);
}
