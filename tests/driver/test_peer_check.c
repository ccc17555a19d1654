/* test_peer_check.c - the verdict on the peers' final models that decides a
 * run's exit status: which peers differ, named against the model most of
 * them hold; unreadable models count as differing.
 * ctest-label: unit */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driver/peer_check.h"

/* "0:aa 1:bb 2:-" -> [{peer 0, crc aa}, {peer 1, crc bb}, {peer 2, error}] */
static cJSON *models(const char *spec)
{
    cJSON *a = cJSON_CreateArray();
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save, *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddNumberToObject(m, "peer", atoi(tok));
        const char *crc = strchr(tok, ':') + 1;
        if (strcmp(crc, "-") == 0)
            cJSON_AddStringToObject(m, "error", "redis 127.0.0.1:1: connection refused");
        else
            cJSON_AddStringToObject(m, "crc32c", crc);
        cJSON_AddItemToArray(a, m);
    }
    return a;
}

static void verdict(const char *spec, int want, const char *want_msg)
{
    char msg[512];
    cJSON *m = models(spec);
    assert_int_equal(peercheck_Differ(m, msg, sizeof msg), want);
    assert_string_equal(msg, want_msg);
    cJSON_Delete(m);
}

static void agreeing_models_pass(void **state)
{
    (void)state;
    verdict("0:aa 1:aa 2:aa", 0, "");
    verdict("3:aa", 0, "");
    verdict("", 0, "");
}

static void differing_peers_are_named(void **state)
{
    (void)state;
    verdict("0:aa 1:bb 2:aa", 1, "peer 1 (model bb) differs from the model aa of peers 0, 2");
    /* A tie: the lowest peer's model is the reference. */
    verdict("0:aa 1:bb", 1, "peer 1 (model bb) differs from the model aa of peer 0");
    verdict("0:cc 1:aa 2:aa 3:bb", 1,
            "peers 0 (model cc), 3 (model bb) differ from the model aa of peers 1, 2");
    verdict("0:aa 1:- 2:aa", 1,
            "peer 1 (model unreadable: redis 127.0.0.1:1: connection refused) differs from "
            "the model aa of peers 0, 2");
    verdict("0:- 1:-", 1,
            "peers 0 (model unreadable: redis 127.0.0.1:1: connection refused), 1 (model "
            "unreadable: redis 127.0.0.1:1: connection refused): no model to compare");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(agreeing_models_pass),
        cmocka_unit_test(differing_peers_are_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
