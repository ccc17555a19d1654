/* ctest-label: unit (starts no server) */
/* test_attack.c - Byzantine attack injection as a user configures it
 * (`spirt train --attack ... --attackers ...`) and what a poisoned peer does
 * to the values it contributes. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"
#include "job/job.h"
#include "ml/attack.h"

/* A job as `spirt train --arch spirt --workers N --attack KIND --attackers
 * LIST | --attackers-count F` sets it (cli/options.c calls these). */
static spStatus make_job(job_config *j, int workers, const char *kind, const char *list,
                         int count)
{
    job_Defaults(j);
    j->arch = ARCH_SPIRT;
    j->workers = workers;
    spStatus st = SP_OK;
    if (kind)
        st = attack_ParseKind(kind, &j->attack.kind);
    if (!st && list)
        st = attack_ParseList(list, &j->attack);
    j->attack.count = count;
    return st ? st : job_Validate(j);
}

static void test_listed_attackers(void **state)
{
    (void)state;
    job_config j;
    assert_int_equal(make_job(&j, 5, "sign-flip", "0,3", 0), SP_OK);
    assert_int_equal(j.attack.kind, ATTACK_SIGN_FLIP);
    for (int p = 0; p < 5; p++)
        assert_int_equal(attack_IsAttacker(&j.attack, p, 5), p == 0 || p == 3);
    assert_true(j.attack.scale == 4.0f); /* the documented default */
}

static void test_attackers_count_is_the_last_peers(void **state)
{
    (void)state;
    job_config j;
    assert_int_equal(make_job(&j, 5, "gaussian", NULL, 2), SP_OK);
    for (int p = 0; p < 5; p++)
        assert_int_equal(attack_IsAttacker(&j.attack, p, 5), p >= 3);
    /* Without --attack nobody attacks. */
    assert_int_equal(make_job(&j, 5, NULL, NULL, 0), SP_OK);
    for (int p = 0; p < 5; p++)
        assert_false(attack_IsAttacker(&j.attack, p, 5));
}

static void test_inconsistent_settings_are_refused(void **state)
{
    (void)state;
    job_config j;
    assert_int_equal(make_job(&j, 4, "flip", "0", 0), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "sign-flip"));
    assert_int_equal(make_job(&j, 4, "label-flip", NULL, 0), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "--attackers"));
    assert_int_equal(make_job(&j, 4, NULL, "1", 0), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "--attack"));
    assert_int_equal(make_job(&j, 4, "gaussian", "4", 0), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "peer 4"));
    assert_int_equal(make_job(&j, 3, "gaussian", NULL, 3), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "honest"));
    assert_int_equal(make_job(&j, 4, "gaussian", "1", 1), SP_ERR_INVALID);
    assert_int_equal(make_job(&j, 4, "gaussian", "1,1", 0), SP_ERR_INVALID);
    assert_int_equal(make_job(&j, 4, "gaussian", "1,x", 0), SP_ERR_INVALID);
    assert_int_equal(make_job(&j, 4, "gaussian", "", 0), SP_ERR_INVALID);
    assert_int_equal(make_job(&j, 4, "sign-flip", "1", 0), SP_OK);
    j.attack.scale = -1.0f;
    assert_int_equal(job_Validate(&j), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "--attack-scale"));
    assert_int_equal(make_job(&j, 4, "gaussian", "1", 0), SP_OK);
    j.attack.sigma = NAN;
    assert_int_equal(job_Validate(&j), SP_ERR_INVALID);
    /* Poisoning needs peers; a corrupt blob is left out only by SPIRT. */
    assert_int_equal(make_job(&j, 4, "sign-flip", "1", 0), SP_OK);
    j.arch = ARCH_SINGLE;
    assert_int_equal(job_Validate(&j), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "distributed"));
    j.arch = ARCH_ALL_REDUCE;
    assert_int_equal(job_Validate(&j), SP_OK);
    assert_int_equal(make_job(&j, 4, "corrupt", "1", 0), SP_OK);
    j.arch = ARCH_MLLESS;
    assert_int_equal(job_Validate(&j), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "spirt"));
}

/* What the user sees on the command line. */
static void test_cli_names_the_bad_option(void **state)
{
    (void)state;
    char dir[256];
    cli_TempDir(dir, sizeof dir);
    assert_true(dir[0] != 0);
    const char *bad[] = {"train", "--arch", "spirt", "--workers", "4", "--attack", "gaussian",
                         "--attackers", "7", NULL};
    assert_int_equal(cli_Run(dir, 60, bad), 2);
    assert_non_null(strstr(cli_Log(dir), "peer 7"));
    const char *kind[] = {"train", "--arch", "spirt", "--attack", "bitflip", NULL};
    assert_int_equal(cli_Run(dir, 60, kind), 2);
    assert_non_null(strstr(cli_Log(dir), "--attack"));
    const char *help[] = {"train", "--help", NULL};
    assert_int_equal(cli_Run(dir, 60, help), 0);
    assert_non_null(strstr(cli_Log(dir), "--attackers-count"));
    assert_non_null(strstr(cli_Log(dir), "--attack-sigma"));
    cli_RemoveDir(dir);
}

/* The steps get the attack through the job JSON: it must survive the trip. */
static void test_job_json_carries_the_attack(void **state)
{
    (void)state;
    job_config j, back;
    assert_int_equal(make_job(&j, 6, "sign-flip", "5,1", 0), SP_OK);
    j.attack.scale = 7.0f;
    cJSON *o = job_ToJson(&j);
    job_Defaults(&back);
    assert_int_equal(job_FromJson(o, &back), SP_OK);
    assert_int_equal(back.attack.kind, ATTACK_SIGN_FLIP);
    for (int p = 0; p < 6; p++)
        assert_int_equal(attack_IsAttacker(&back.attack, p, 6), p == 1 || p == 5);
    assert_true(back.attack.scale == 7.0f);
    cJSON_Delete(o);

    assert_int_equal(make_job(&j, 6, "label-flip", NULL, 2), SP_OK);
    o = job_ToJson(&j);
    job_Defaults(&back);
    assert_int_equal(job_FromJson(o, &back), SP_OK);
    assert_int_equal(back.attack.kind, ATTACK_LABEL_FLIP);
    for (int p = 0; p < 6; p++)
        assert_int_equal(attack_IsAttacker(&back.attack, p, 6), p >= 4);
    cJSON_Delete(o);

    /* An honest job sends no attack at all. */
    assert_int_equal(make_job(&j, 6, NULL, NULL, 0), SP_OK);
    o = job_ToJson(&j);
    assert_null(cJSON_GetObjectItem(o, "attack"));
    cJSON_Delete(o);

    /* A hostile job object is refused with a message naming the field. */
    o = cJSON_Parse("{\"arch\":\"spirt\",\"workers\":4,\"attack\":{\"kind\":\"gaussian\","
                    "\"attackers\":[1,9]}}");
    job_Defaults(&back);
    assert_int_equal(job_FromJson(o, &back), SP_ERR_INVALID);
    cJSON_Delete(o);
    o = cJSON_Parse("{\"arch\":\"spirt\",\"workers\":4,\"attack\":{\"kind\":\"gaussian\","
                    "\"attackers\":[1e300]}}");
    job_Defaults(&back);
    assert_int_equal(job_FromJson(o, &back), SP_ERR_INVALID);
    assert_non_null(strstr(sp_LastError(), "attackers"));
    cJSON_Delete(o);
}

static void test_sign_flip_multiplies_by_minus_scale(void **state)
{
    (void)state;
    attack_config c;
    attack_Defaults(&c);
    c.kind = ATTACK_SIGN_FLIP;
    c.scale = 4.0f;
    float x[5] = {1.0f, -2.0f, 0.0f, 0.25f, 3.0f};
    attack_Poison(&c, 42, 1, 7, x, 5);
    const float want[5] = {-4.0f, 8.0f, -0.0f, -1.0f, -12.0f};
    for (int i = 0; i < 5; i++)
        assert_true(x[i] == want[i]);
}

static void test_gaussian_is_noise_of_sigma_and_reproducible(void **state)
{
    (void)state;
    enum { N = 200000 };
    attack_config c;
    attack_Defaults(&c);
    c.kind = ATTACK_GAUSSIAN;
    c.sigma = 2.0f;
    float *a = calloc(N, sizeof *a), *b = calloc(N, sizeof *b), *d = calloc(N, sizeof *d);
    for (int i = 0; i < N; i++)
        a[i] = b[i] = d[i] = 1.0f; /* replaced, not added to */
    attack_Poison(&c, 42, 3, 10, a, N);
    attack_Poison(&c, 42, 3, 10, b, N);
    attack_Poison(&c, 42, 3, 11, d, N);
    double sum = 0, sq = 0;
    int same_next = 0;
    for (int i = 0; i < N; i++) {
        sum += a[i];
        sq += (double)a[i] * a[i];
        same_next += a[i] == d[i];
    }
    double mean = sum / N, sd = sqrt(sq / N - mean * mean);
    assert_true(fabs(mean) < 0.03);
    assert_true(fabs(sd - 2.0) < 0.03);
    /* A retried step publishes the same values; the next iteration others. */
    assert_memory_equal(a, b, sizeof(float) * N);
    assert_true(same_next < N / 100);
    free(a);
    free(b);
    free(d);
}

static void test_label_flip_and_other_kinds_leave_values(void **state)
{
    (void)state;
    int32_t y[4] = {0, 3, 9, 5};
    attack_FlipLabels(10, y, 4);
    assert_int_equal(y[0], 9);
    assert_int_equal(y[1], 6);
    assert_int_equal(y[2], 0);
    assert_int_equal(y[3], 4);
    attack_config c;
    attack_Defaults(&c);
    c.kind = ATTACK_LABEL_FLIP;
    float x[2] = {1.5f, -2.0f};
    attack_Poison(&c, 1, 0, 0, x, 2);
    assert_true(x[0] == 1.5f && x[1] == -2.0f);
    assert_false(attack_OnAverage(&c));
    c.kind = ATTACK_CORRUPT;
    assert_true(attack_OnAverage(&c));
    /* The flipped byte is always in the payload, never in the header. */
    for (long t = 0; t < 1000; t++) {
        size_t off = attack_CorruptOffset(24, 24 + 400, t);
        assert_true(off >= 24 && off < 424);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listed_attackers),
        cmocka_unit_test(test_attackers_count_is_the_last_peers),
        cmocka_unit_test(test_inconsistent_settings_are_refused),
        cmocka_unit_test(test_cli_names_the_bad_option),
        cmocka_unit_test(test_job_json_carries_the_attack),
        cmocka_unit_test(test_sign_flip_multiplies_by_minus_scale),
        cmocka_unit_test(test_gaussian_is_noise_of_sigma_and_reproducible),
        cmocka_unit_test(test_label_flip_and_other_kinds_leave_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
