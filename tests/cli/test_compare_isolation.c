/* ctest-lock: machine (trains, a few seconds) */
/* test_compare_isolation.c - `spirt compare` on running services (the
 * test's own Redis and NATS, steps in the driver's process) runs each
 * architecture under a job name of its own, so no run reads or overwrites
 * another's keys (or its NATS stream, named by the job too): after
 * comparing spirt and all-reduce, every key in every database belongs to
 * exactly one of the two runs, and the all-reduce run, which uses only the
 * shared database, left the peers' databases as SPIRT left them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "cli.h"
#include "cluster.h"
#include "store/store_internal.h"

/* Counts the keys of one database by job prefix: [0] "{iso-spirt}:",
 * [1] "{iso-all-reduce}:", [2] anything else. */
static void count_keys(int port, int counts[3])
{
    store_addr a;
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    assert_int_equal(store_ParseAddr(addr, &a), SP_OK);
    snprintf(a.password, sizeof a.password, "%s", CL_PASSWORD);
    store *s;
    assert_int_equal(store_Connect(&a, &s), SP_OK);
    redisReply *r = redisCommand(s->c, "KEYS *");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    counts[0] = counts[1] = counts[2] = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const char *k = r->element[i]->str;
        if (!strncmp(k, "{iso-spirt}:", 12))
            counts[0]++;
        else if (!strncmp(k, "{iso-all-reduce}:", 17))
            counts[1]++;
        else
            counts[2]++;
    }
    freeReplyObject(r);
    store_Destroy(s);
}

static void each_architecture_runs_under_its_own_job(void **state)
{
    (void)state;
    cl_services cl;
    assert_int_equal(cl_Up(&cl, 2, 0), 0);
    char out[400];
    snprintf(out, sizeof out, "%s/cmp", cl.dir);
    const char *args[] = {"--archs", "spirt,all-reduce", "--transport", "inproc", "--workers",
                          "2", "--epochs", "1", "--train-samples", "1000", "--test-samples",
                          "500", "--out", out, NULL};
    pid_t pid = cl_SpawnCommand(&cl, "compare", "iso", NULL, args);
    int rc = cli_WaitExit(pid, 600);
    if (rc != 0)
        print_error("spirt compare exited %d:\n%s\n", rc, cli_Log(cl.dir));
    assert_int_equal(rc, 0);
    int shared[3], peer[3];
    count_keys(cl.shared.port, shared);
    assert_true(shared[0] > 0 && shared[1] > 0); /* each run stored its own dataset */
    assert_int_equal(shared[2], 0);
    for (int p = 0; p < cl.n_peers; p++) {
        count_keys(cl.peer[p].port, peer);
        assert_true(peer[0] > 0); /* SPIRT's model, momentum, marker */
        assert_int_equal(peer[1] + peer[2], 0);
    }
    cl_Down(&cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_architecture_runs_under_its_own_job),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
