/* test_auth.c - peer authentication and the runner's Redis ACL.
 *
 * HMAC-SHA256 (OpenSSL under auth/hmac.h) against the published vectors,
 * fed whole and in pieces; then, on the local
 * runner's real servers (ACL user, default user off): a joining peer's
 * challenge-response is accepted with the right key and refused when
 * replayed, made with another key, for another peer or job, or too late;
 * the same through the `join` step in-process and as its own HTTP function
 * process, driven by the driver's join_Authenticate. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/crypto.h>

#include "auth/auth.h"
#include "auth/hmac.h"
#include "driver/invoke.h"
#include "job/job.h"
#include "driver/join_auth.h"
#include "driver/runner.h"
#include "fixture.h"
#include "steps/steps.h"
#include "store/store.h"

#define JOB "authjob"

static runner R;
static store *shared_db;
static auth_key master;
static cJSON *base;       /* the executor's request base: the job */

static void hex_of(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static void expect_hmac(const void *key, size_t kn, const char *msg, const char *want)
{
    uint8_t d[HMAC_SHA256_SIZE];
    char hex[2 * HMAC_SHA256_SIZE + 1];
    assert_int_equal(hmac_Sha256(key, kn, msg, strlen(msg), d), SP_OK);
    hex_of(d, sizeof d, hex);
    assert_string_equal(hex, want);
    /* the same message in uneven pieces through the incremental API */
    hmac_ctx h;
    assert_int_equal(hmac_Init(&h, key, kn), SP_OK);
    size_t off = 0, piece = 1, n = strlen(msg);
    while (off < n) {
        size_t k = piece < n - off ? piece : n - off;
        hmac_Update(&h, msg + off, k);
        off += k;
        piece = piece * 3 % 17 + 1;
    }
    assert_int_equal(hmac_Final(&h, d), SP_OK);
    hex_of(d, sizeof d, hex);
    assert_string_equal(hex, want);
}

/* RFC 4231 test cases 1, 2, 6 and 7 (short key, text key, keys longer than
 * a block). */
static void test_hmac_vectors(void **state)
{
    (void)state;
    uint8_t k1[20], k6[131];
    memset(k1, 0x0b, sizeof k1);
    memset(k6, 0xaa, sizeof k6);
    expect_hmac(k1, sizeof k1, "Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    expect_hmac("Jefe", 4, "what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    expect_hmac(k6, sizeof k6, "Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    expect_hmac(k6, sizeof k6,
                "This is a test using a larger than block-size key and a larger than "
                "block-size data. The key needs to be hashed before being used by the HMAC "
                "algorithm.",
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
    /* an empty key and message (a NULL key pointer must not mean "no key") */
    expect_hmac(NULL, 0, "", "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
    assert_int_equal(CRYPTO_memcmp("abcd", "abcd", 4), 0);
    assert_int_not_equal(CRYPTO_memcmp("abcd", "abce", 4), 0);
}

static void test_keys(void **state)
{
    (void)state;
    auth_key m, back, k0, k1, k0b, other;
    char hex[AUTH_HEX_SIZE];
    assert_int_equal(auth_NewKey(&m), SP_OK);
    auth_KeyToHex(&m, hex);
    assert_int_equal(strlen(hex), 64);
    assert_int_equal(auth_KeyFromHex(hex, &back), SP_OK);
    assert_memory_equal(m.b, back.b, AUTH_KEY_SIZE);
    assert_int_equal(auth_KeyFromHex("abc", &back), SP_ERR_INVALID);
    hex[10] = 'g';
    assert_int_equal(auth_KeyFromHex(hex, &back), SP_ERR_INVALID);
    /* Per-peer keys: stable, different per peer and per job. */
    auth_PeerKey(&m, JOB, 0, &k0);
    auth_PeerKey(&m, JOB, 1, &k1);
    auth_PeerKey(&m, JOB, 0, &k0b);
    auth_PeerKey(&m, "otherjob", 0, &other);
    assert_memory_equal(k0.b, k0b.b, AUTH_KEY_SIZE);
    assert_memory_not_equal(k0.b, k1.b, AUTH_KEY_SIZE);
    assert_memory_not_equal(k0.b, other.b, AUTH_KEY_SIZE);
    assert_memory_not_equal(k0.b, m.b, AUTH_KEY_SIZE);
}

/* ---- on the local runner's servers ------------------------------------- */

static store *connect_as(int port, const char *user, const char *password, spStatus *st)
{
    store_addr a;
    char s[64];
    snprintf(s, sizeof s, "127.0.0.1:%d", port);
    assert_int_equal(store_ParseAddr(s, &a), SP_OK);
    snprintf(a.user, sizeof a.user, "%s", user);
    snprintf(a.password, sizeof a.password, "%s", password);
    a.timeout_ms = 3000;
    store *db = NULL;
    *st = store_Connect(&a, &db);
    if (*st == SP_OK)
        *st = store_Ping(db);
    if (*st != SP_OK && db) {
        store_Destroy(db);
        db = NULL;
    }
    return db;
}

static int servers_Up(void **state)
{
    (void)state;
    setenv("SPIRT_MODULE", fx_ModulePath(), 1);
    runner_options o = {.peers = 1, .quiet = 1};
    if (runner_Start(&R, &o) != SP_OK) {
        fprintf(stderr, "runner: %s\n", sp_LastError());
        return -1;
    }
    spStatus st;
    shared_db = connect_as(R.shared_port, R.redis_user, R.redis_password, &st);
    if (!shared_db || auth_KeyFromHex(R.auth_key, &master) != SP_OK)
        return -1;
    steps_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.redis_user, sizeof c.redis_user, "%s", R.redis_user);
    snprintf(c.redis_password, sizeof c.redis_password, "%s", R.redis_password);
    /* Both workers' databases are the one peer Redis the runner started. */
    snprintf(c.redis_peers, sizeof c.redis_peers, "127.0.0.1:%d,127.0.0.1:%d", R.peer_ports[0],
             R.peer_ports[0]);
    snprintf(c.redis_shared, sizeof c.redis_shared, "127.0.0.1:%d", R.shared_port);
    c.timeout_ms = 3000;
    if (steps_Configure(&c) != SP_OK)
        return -1;
    auth_Configure(&master);

    job_config j;
    job_Defaults(&j);
    snprintf(j.id, sizeof j.id, JOB);
    j.arch = ARCH_SPIRT;
    j.workers = 2;
    base = cJSON_CreateObject();
    cJSON_AddItemToObject(base, "job", job_ToJson(&j));
    return 0;
}

static int servers_Down(void **state)
{
    (void)state;
    cJSON_Delete(base);
    store_Destroy(shared_db);
    store_ReleaseCached();
    runner_Stop(&R);
    return 0;
}

/* The runner's Redis: only its ACL user gets in; the default user (a bare
 * password, as with requirepass) is switched off. */
static void test_runner_redis_acl(void **state)
{
    (void)state;
    spStatus st;
    store *s = connect_as(R.peer_ports[0], R.redis_user, R.redis_password, &st);
    assert_non_null(s);
    /* The module's commands are allowed to the ACL user. */
    float x[4] = {1, 2, 3, 4}, y[4] = {3, 2, 1, 0}, *m;
    size_t n;
    int in_db;
    const char *srcs[2] = {"{acl}:x", "{acl}:y"};
    assert_int_equal(store_PutTensor(s, srcs[0], x, 4, 60), SP_OK);
    assert_int_equal(store_PutTensor(s, srcs[1], y, 4, 60), SP_OK);
    assert_int_equal(store_Average(s, "{acl}:m", srcs, 2, 60, &in_db), SP_OK);
    assert_true(in_db);
    assert_int_equal(store_GetTensor(s, "{acl}:m", 4, &m, &n), SP_OK);
    for (int i = 0; i < 4; i++)
        assert_true(m[i] == 2.0f);
    free(m);
    store_Destroy(s);

    assert_null(connect_as(R.peer_ports[0], "", R.redis_password, &st));
    assert_int_equal(st, SP_ERR_AUTH);
    assert_null(connect_as(R.peer_ports[0], R.redis_user, "wrong", &st));
    assert_int_equal(st, SP_ERR_AUTH);
    assert_null(connect_as(R.shared_port, "default", R.redis_password, &st));
    assert_int_equal(st, SP_ERR_AUTH);
    /* No credentials at all: every command is refused. */
    assert_null(connect_as(R.shared_port, "", "", &st));
    assert_int_equal(st, SP_ERR_AUTH);
}

static void test_good_response_is_accepted_once(void **state)
{
    (void)state;
    auth_key k1;
    char nonce[AUTH_HEX_SIZE], mac[AUTH_HEX_SIZE], nonce2[AUTH_HEX_SIZE];
    auth_PeerKey(&master, JOB, 1, &k1);
    assert_int_equal(auth_Challenge(shared_db, JOB, 1, 0, nonce), SP_OK);
    assert_int_equal(auth_Challenge(shared_db, JOB, 1, 0, nonce2), SP_OK);
    assert_string_not_equal(nonce, nonce2); /* fresh every time */
    auth_Respond(&k1, JOB, 1, nonce, mac);
    assert_int_equal(auth_Verify(shared_db, &master, JOB, 1, nonce, mac), SP_OK);
    /* The very same answer again: a replay. */
    assert_int_equal(auth_Verify(shared_db, &master, JOB, 1, nonce, mac), SP_ERR_AUTH);
    assert_non_null(strstr(sp_LastError(), "already used"));
    /* The other nonce is still good. */
    auth_Respond(&k1, JOB, 1, nonce2, mac);
    assert_int_equal(auth_Verify(shared_db, &master, JOB, 1, nonce2, mac), SP_OK);
}

static void test_wrong_key_peer_or_job_is_refused(void **state)
{
    (void)state;
    auth_key k0, k1, stranger, other_master;
    char nonce[AUTH_HEX_SIZE], mac[AUTH_HEX_SIZE];
    auth_PeerKey(&master, JOB, 0, &k0);
    auth_PeerKey(&master, JOB, 1, &k1);
    assert_int_equal(auth_NewKey(&other_master), SP_OK);
    auth_PeerKey(&other_master, JOB, 1, &stranger);

    /* Peer 0's key cannot answer for peer 1, nor another deployment's. */
    const auth_key *wrong[] = {&k0, &stranger};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(auth_Challenge(shared_db, JOB, 1, 0, nonce), SP_OK);
        auth_Respond(wrong[i], JOB, 1, nonce, mac);
        assert_int_equal(auth_Verify(shared_db, &master, JOB, 1, nonce, mac), SP_ERR_AUTH);
        assert_non_null(strstr(sp_LastError(), "wrong response"));
        /* A failed answer burns the nonce: the right one is now too late. */
        auth_Respond(&k1, JOB, 1, nonce, mac);
        assert_int_equal(auth_Verify(shared_db, &master, JOB, 1, nonce, mac), SP_ERR_AUTH);
    }
    /* A nonce issued to peer 1 does not admit peer 0, even with its own key. */
    assert_int_equal(auth_Challenge(shared_db, JOB, 1, 0, nonce), SP_OK);
    auth_Respond(&k0, JOB, 0, nonce, mac);
    assert_int_equal(auth_Verify(shared_db, &master, JOB, 0, nonce, mac), SP_ERR_AUTH);
    /* An answer bound to another job does not match. */
    auth_Respond(&k1, "otherjob", 1, nonce, mac);
    assert_int_equal(auth_Verify(shared_db, &master, JOB, 1, nonce, mac), SP_ERR_AUTH);
    /* Made-up nonces and garbage answers. */
    char fake[AUTH_HEX_SIZE];
    memset(fake, 'a', 64);
    fake[64] = '\0';
    auth_Respond(&k1, JOB, 1, fake, mac);
    assert_int_equal(auth_Verify(shared_db, &master, JOB, 1, fake, mac), SP_ERR_AUTH);
    assert_int_equal(auth_Verify(shared_db, &master, JOB, 1, "1234", mac), SP_ERR_AUTH);
    assert_int_equal(auth_Challenge(shared_db, JOB, 1, 0, nonce), SP_OK);
    assert_int_equal(auth_Verify(shared_db, &master, JOB, 1, nonce, "short"), SP_ERR_AUTH);
}

static void test_expired_nonce_is_refused(void **state)
{
    (void)state;
    auth_key k1;
    char nonce[AUTH_HEX_SIZE], mac[AUTH_HEX_SIZE];
    auth_PeerKey(&master, JOB, 1, &k1);
    assert_int_equal(auth_Challenge(shared_db, JOB, 1, 30, nonce), SP_OK);
    auth_Respond(&k1, JOB, 1, nonce, mac);
    struct timespec ts = {0, 300 * 1000000L};
    nanosleep(&ts, NULL);
    assert_int_equal(auth_Verify(shared_db, &master, JOB, 1, nonce, mac), SP_ERR_AUTH);
}

static void test_tickets(void **state)
{
    (void)state;
    char t[AUTH_HEX_SIZE], t2[AUTH_HEX_SIZE];
    assert_int_equal(auth_Admit(shared_db, JOB, 1, 0, t), SP_OK);
    assert_int_equal(auth_CheckTicket(shared_db, JOB, 1, t), SP_OK);
    assert_int_equal(auth_CheckTicket(shared_db, JOB, 1, t), SP_OK); /* retry-safe */
    assert_int_equal(auth_CheckTicket(shared_db, JOB, 0, t), SP_ERR_AUTH);
    assert_int_equal(auth_CheckTicket(shared_db, "otherjob", 1, t), SP_ERR_AUTH);
    assert_int_equal(auth_CheckTicket(shared_db, JOB, 1, "nope"), SP_ERR_AUTH);
    /* A new admission replaces the last ticket. */
    assert_int_equal(auth_Admit(shared_db, JOB, 1, 0, t2), SP_OK);
    assert_int_equal(auth_CheckTicket(shared_db, JOB, 1, t), SP_ERR_AUTH);
    assert_int_equal(auth_CheckTicket(shared_db, JOB, 1, t2), SP_OK);
}

/* ---- the join step ------------------------------------------------------- */

static spStatus join(const char *action, int peer, const char *nonce, const char *mac,
                     cJSON **out)
{
    cJSON *req = cJSON_Duplicate(base, 1);
    cJSON_AddNumberToObject(req, "peer", peer);
    if (action)
        cJSON_AddStringToObject(req, "action", action);
    if (nonce)
        cJSON_AddStringToObject(req, "nonce", nonce);
    if (mac)
        cJSON_AddStringToObject(req, "response", mac);
    rt_request r = {.body = req};
    *out = cJSON_CreateObject();
    spStatus st = step_Join(&r, *out, NULL);
    cJSON_Delete(req);
    return st;
}

static void test_join_step_in_process(void **state)
{
    (void)state;
    cJSON *res;
    auth_key k1, k0;
    char nonce[AUTH_HEX_SIZE], mac[AUTH_HEX_SIZE];
    auth_PeerKey(&master, JOB, 1, &k1);
    auth_PeerKey(&master, JOB, 0, &k0);
    assert_int_equal(join("challenge", 1, NULL, NULL, &res), SP_OK);
    snprintf(nonce, sizeof nonce, "%s", cJSON_GetObjectItem(res, "nonce")->valuestring);
    cJSON_Delete(res);
    auth_Respond(&k1, JOB, 1, nonce, mac);
    assert_int_equal(join("verify", 1, nonce, mac, &res), SP_OK);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(res, "admitted")));
    const char *ticket = cJSON_GetObjectItem(res, "ticket")->valuestring;
    assert_int_equal(auth_CheckTicket(shared_db, JOB, 1, ticket), SP_OK);
    cJSON_Delete(res);
    assert_int_equal(join("verify", 1, nonce, mac, &res), SP_ERR_AUTH); /* replay */
    cJSON_Delete(res);

    assert_int_equal(join("challenge", 1, NULL, NULL, &res), SP_OK);
    snprintf(nonce, sizeof nonce, "%s", cJSON_GetObjectItem(res, "nonce")->valuestring);
    cJSON_Delete(res);
    auth_Respond(&k0, JOB, 1, nonce, mac);
    assert_int_equal(join("verify", 1, nonce, mac, &res), SP_ERR_AUTH); /* wrong key */
    cJSON_Delete(res);

    assert_int_equal(join("enroll", 1, NULL, NULL, &res), SP_ERR_INVALID);
    cJSON_Delete(res);
    assert_int_equal(join(NULL, 1, NULL, NULL, &res), SP_ERR_INVALID);
    cJSON_Delete(res);
    assert_int_equal(join("verify", 1, nonce, NULL, &res), SP_ERR_INVALID);
    cJSON_Delete(res);
    assert_int_equal(join("challenge", 5, NULL, NULL, &res), SP_ERR_INVALID); /* no peer 5 */
    cJSON_Delete(res);
}

/* The driver's side: join_Authenticate acting for a peer with its key. */
static void test_driver_hook_in_process(void **state)
{
    (void)state;
    invoker inv;
    memset(&inv, 0, sizeof inv);
    inv.transport = &invoke_Inproc;
    inv.timeout_ms = 5000;
    char ticket[AUTH_HEX_SIZE];
    assert_int_equal(join_Authenticate(&inv, base, 1, NULL, ticket), SP_OK);
    assert_int_equal(auth_CheckTicket(shared_db, JOB, 1, ticket), SP_OK);
    auth_key k0;
    auth_PeerKey(&master, JOB, 0, &k0);
    assert_int_equal(join_Authenticate(&inv, base, 1, &k0, ticket), SP_ERR_AUTH);
    assert_int_equal(join_Authenticate(&inv, base, 0, &k0, ticket), SP_OK);
}

/* The same through spirt-fn-join, configured the way the runner starts
 * it: the master key only in its environment, the ACL user's login, the
 * shared Redis's address. */
static void test_driver_hook_over_http(void **state)
{
    (void)state;
    int port = fx_FreePort();
    char e_port[32], e_tok[96], e_user[96], e_pw[128], e_key[96], e_shared[64], log[300];
    snprintf(e_port, sizeof e_port, "PORT=%d", port);
    snprintf(e_tok, sizeof e_tok, "SPIRT_TOKEN=%s", R.token);
    snprintf(e_user, sizeof e_user, "SPIRT_REDIS_USER=%s", R.redis_user);
    snprintf(e_pw, sizeof e_pw, "SPIRT_REDIS_PASSWORD=%s", R.redis_password);
    snprintf(e_key, sizeof e_key, "SPIRT_AUTH_KEY=%s", R.auth_key);
    snprintf(e_shared, sizeof e_shared, "SPIRT_REDIS_SHARED=127.0.0.1:%d", R.shared_port);
    snprintf(log, sizeof log, "%s/fn-join-test.log", R.dir);
    char *env[] = {e_port, e_tok, e_user, e_pw, e_key, e_shared, NULL};
    char *argv[] = {(char *)fx_BinPath("spirt-fn-join"), NULL};
    pid_t pid = fx_Spawn(argv, env, log);
    assert_true(pid > 0);
    int up = fx_WaitPort(port, 10000) == 0;

    invoker inv;
    memset(&inv, 0, sizeof inv);
    inv.transport = &invoke_Http;
    inv.timeout_ms = 5000;
    snprintf(inv.token, sizeof inv.token, "%s", R.token);
    snprintf(inv.local[0].step, sizeof inv.local[0].step, "join");
    snprintf(inv.local[0].url, sizeof inv.local[0].url, "http://127.0.0.1:%d/", port);
    inv.n_local = 1;
    char ticket[AUTH_HEX_SIZE];
    spStatus good = up ? join_Authenticate(&inv, base, 1, NULL, ticket) : SP_ERR_UNAVAILABLE;
    auth_key k0;
    auth_PeerKey(&master, JOB, 0, &k0);
    spStatus bad = up ? join_Authenticate(&inv, base, 1, &k0, ticket) : SP_ERR_UNAVAILABLE;
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    assert_true(up);
    assert_int_equal(good, SP_OK);
    assert_int_equal(bad, SP_ERR_AUTH);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_hmac_vectors),
        cmocka_unit_test(test_keys),
    };
    const struct CMUnitTest live[] = {
        cmocka_unit_test(test_runner_redis_acl),
        cmocka_unit_test(test_good_response_is_accepted_once),
        cmocka_unit_test(test_wrong_key_peer_or_job_is_refused),
        cmocka_unit_test(test_expired_nonce_is_refused),
        cmocka_unit_test(test_tickets),
        cmocka_unit_test(test_join_step_in_process),
        cmocka_unit_test(test_driver_hook_in_process),
        cmocka_unit_test(test_driver_hook_over_http),
    };
    int failed = cmocka_run_group_tests_name("pure", pure, NULL, NULL);
    return failed + cmocka_run_group_tests_name("live", live, servers_Up, servers_Down);
}
