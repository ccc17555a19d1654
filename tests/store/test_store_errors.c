/* test_store_errors.c - the one mapping from Redis failures to statuses
 * (src/store/store_errors.c), as tables: no server is started.
 * ctest-label: unit */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "store/store_internal.h"

typedef struct {
    const char *reply;
    spStatus want;
} reply_case;

/* Error replies as Redis and the spirt module send them. */
static const reply_case replies[] = {
    /* retryable: the server cannot serve right now */
    {"LOADING Redis is loading the dataset in memory", SP_ERR_UNAVAILABLE},
    {"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
     SP_ERR_UNAVAILABLE},
    {"MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
     SP_ERR_UNAVAILABLE},
    {"TRYAGAIN Multiple keys request during rehashing of slot", SP_ERR_UNAVAILABLE},
    {"CLUSTERDOWN The cluster is down", SP_ERR_UNAVAILABLE},
    {"OOM command not allowed when used memory > 'maxmemory'.", SP_ERR_UNAVAILABLE},
    {"MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist "
     "to disk.",
     SP_ERR_UNAVAILABLE},
    {"READONLY You can't write against a read only replica.", SP_ERR_UNAVAILABLE},
    {"NOREPLICAS Not enough good replicas to write.", SP_ERR_UNAVAILABLE},
    {"ERR max number of clients reached", SP_ERR_UNAVAILABLE},
    {"LOADING", SP_ERR_UNAVAILABLE}, /* a code alone */
    /* credentials */
    {"NOAUTH Authentication required.", SP_ERR_AUTH},
    {"WRONGPASS invalid username-password pair or user is disabled.", SP_ERR_AUTH},
    {"NOPERM this user has no permissions to run the 'spirt.avg' command", SP_ERR_AUTH},
    /* a key of another type */
    {"WRONGTYPE Operation against a key holding the wrong kind of value", SP_ERR_INVALID},
    {"WRONGTYPE spirt: key '{j}:l' does not hold a string", SP_ERR_INVALID},
    /* the spirt module's verdicts on its input */
    {"ERR spirt: no such key '{j}:grad:0:1:0'", SP_ERR_NOT_FOUND},
    {"ERR spirt: corrupt tensor at '{j}:x': wire: checksum mismatch", SP_ERR_FORMAT},
    {"ERR spirt: corrupt tensor at '{j}:x': no direct access", SP_ERR_FORMAT},
    {"ERR spirt: wrong dtype: key '{j}:x' holds dtype 3, not a dense float32 tensor",
     SP_ERR_INVALID},
    {"ERR spirt: size mismatch: params has 10 elements, grad 12", SP_ERR_INVALID},
    {"ERR spirt: not finite: the average for '{j}:avg' holds NaN or Inf", SP_ERR_INVALID},
    {"ERR spirt: bad argument: ttl_ms must be an integer from 0 to 4398046511104",
     SP_ERR_INVALID},
    {"ERR spirt: bad argument: 5000 sources, at most 4096", SP_ERR_INVALID},
    {"ERR spirt: bad argument: lr is not a finite number", SP_ERR_INVALID},
    {"ERR spirt: bad argument: momentum 0.9 needs a mom_key", SP_ERR_INVALID},
    {"ERR spirt: bad argument: params, grad and mom_key must be distinct keys", SP_ERR_INVALID},
    {"ERR spirt: corrupt marker: '{j}:applied:0' does not hold an iteration number",
     SP_ERR_FORMAT},
    {"ERR spirt: stale: iteration 4, but 5 is applied already", SP_ERR_CONFLICT},
    /* the module failing on its side, and everything unknown: not retryable */
    {"ERR spirt: cannot write 4000024 bytes to '{j}:avg'", SP_ERR_INTERNAL},
    {"ERR spirt: cannot open '{j}:mom' for writing", SP_ERR_INTERNAL},
    {"ERR spirt: cannot get write access to the tensors", SP_ERR_INTERNAL},
    {"ERR wrong number of arguments for 'spirt.update' command", SP_ERR_INTERNAL},
    {"ERR unknown command 'SPIRT.AVG', with args beginning with: ", SP_ERR_INTERNAL},
    {"ERR syntax error", SP_ERR_INTERNAL},
    {"ERR value is not an integer or out of range", SP_ERR_INTERNAL},
    {"NOSCRIPT No matching script. Please use EVAL.", SP_ERR_INTERNAL},
    {"EXECABORT Transaction discarded because of previous errors.", SP_ERR_INTERNAL},
    {"MOVED 3999 127.0.0.1:6381", SP_ERR_INTERNAL},
    /* codes are whole words: these are not BUSY / OOM / LOADING */
    {"BUSYKEY Target key name already exists.", SP_ERR_INTERNAL},
    {"BUSYGROUP Consumer Group name already exists", SP_ERR_INTERNAL},
    {"OOMX not a code we know", SP_ERR_INTERNAL},
    {"spirt: no such key 'x'", SP_ERR_INTERNAL}, /* the module prefix is "ERR spirt: " */
    {"ERR spirt:no such key 'x'", SP_ERR_INTERNAL},
    {"", SP_ERR_INTERNAL},
};

static void test_error_replies(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof replies / sizeof *replies; i++) {
        spStatus got = store_StatusOfReply(replies[i].reply);
        if (got != replies[i].want)
            fail_msg("\"%s\": got %s, want %s", replies[i].reply, sp_StatusName(got),
                     sp_StatusName(replies[i].want));
    }
    assert_int_equal(store_StatusOfReply(NULL), SP_ERR_INTERNAL);
}

typedef struct {
    int err, errno_val;
    const char *errstr;
    spStatus want;
} conn_case;

/* Dead contexts as hiredis 0.14 leaves them (err code, errno, errstr). */
static const conn_case conns[] = {
    {REDIS_ERR_IO, EAGAIN, "Resource temporarily unavailable", SP_ERR_TIMEOUT},
    {REDIS_ERR_IO, 0, "Resource temporarily unavailable", SP_ERR_TIMEOUT}, /* errno lost */
    {REDIS_ERR_IO, ETIMEDOUT, "Connection timed out", SP_ERR_TIMEOUT},
    {REDIS_ERR_IO, EINPROGRESS, "Operation now in progress", SP_ERR_TIMEOUT},
    {REDIS_ERR_IO, ECONNREFUSED, "Connection refused", SP_ERR_UNAVAILABLE},
    {REDIS_ERR_IO, ECONNRESET, "Connection reset by peer", SP_ERR_UNAVAILABLE},
    {REDIS_ERR_IO, EPIPE, "Broken pipe", SP_ERR_UNAVAILABLE},
    {REDIS_ERR_EOF, EAGAIN, "Server closed the connection", SP_ERR_UNAVAILABLE},
    {REDIS_ERR_OTHER, 0, "Name or service not known", SP_ERR_UNAVAILABLE},
    {REDIS_ERR_OOM, 0, "Out of memory", SP_ERR_NOMEM},
    {REDIS_ERR_PROTOCOL, 0, "Protocol error, got \"H\" as reply type byte", SP_ERR_INTERNAL},
};

static void test_dead_connections(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof conns / sizeof *conns; i++) {
        const conn_case *c = &conns[i];
        spStatus got = store_StatusOfConn(c->err, c->errno_val, c->errstr);
        if (got != c->want)
            fail_msg("err %d errno %d \"%s\": got %s, want %s", c->err, c->errno_val, c->errstr,
                     sp_StatusName(got), sp_StatusName(c->want));
        /* Every dead connection that a reconnect can cure is retryable. */
        if (c->want == SP_ERR_TIMEOUT || c->want == SP_ERR_UNAVAILABLE)
            assert_true(sp_IsRetryable(got));
    }
}

/* store_Fail: the status of the mapping, a message naming server and
 * command, and an unexpected reply type is internal. */
static void test_fail_messages(void **state)
{
    (void)state;
    struct store s;
    memset(&s, 0, sizeof s);
    strcpy(s.addr.host, "peer-3");
    s.addr.port = 6390;
    redisReply r;
    memset(&r, 0, sizeof r);
    r.type = REDIS_REPLY_ERROR;
    r.str = "LOADING Redis is loading the dataset in memory";
    r.len = strlen(r.str);
    assert_int_equal(store_Fail(&s, &r, "SPIRT.AVG"), SP_ERR_UNAVAILABLE);
    assert_non_null(strstr(sp_LastError(), "redis peer-3:6390: SPIRT.AVG: LOADING"));
    r.str = "ERR spirt: corrupt tensor at '{j}:x': wire: bad magic";
    assert_int_equal(store_Fail(&s, &r, "SPIRT.UPDATE"), SP_ERR_FORMAT);
    r.type = REDIS_REPLY_ARRAY;
    assert_int_equal(store_Fail(&s, &r, "GET"), SP_ERR_INTERNAL);
    assert_non_null(strstr(sp_LastError(), "unexpected reply type"));
    /* No context at all (never connected): unavailable, not a crash. */
    assert_int_equal(store_Fail(&s, NULL, "PING"), SP_ERR_UNAVAILABLE);
    assert_int_equal(store_Fail(NULL, NULL, "PING"), SP_ERR_UNAVAILABLE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_replies),
        cmocka_unit_test(test_dead_connections),
        cmocka_unit_test(test_fail_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
