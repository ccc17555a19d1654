/* ctest-label: unit */
/* test_compare_metrics.c - the numbers `spirt compare` derives from run
 * reports, on reports built here (no server): when a curve reaches a
 * target, what a run used and cost (the split adds up, instances counted
 * per architecture), the cost accrued along a curve, the slow-tail flag. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>
#include <cmocka.h>

#include "cli/compare.h"

static const cost_model prices = {.price_gb_second = 0.00002, .price_per_million = 0.3,
                                  .memory_gb = 2.0, .price_redis_hour = 0.05,
                                  .price_nats_hour = 0.02, .price_vm_hour = 0.1};

static void add_point(cJSON *h, double t, double it, double loss, double acc)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "t", t);
    cJSON_AddNumberToObject(p, "iteration", it);
    cJSON_AddNumberToObject(p, "loss", loss);
    if (acc >= 0)
        cJSON_AddNumberToObject(p, "test_accuracy", acc);
    cJSON_AddItemToArray(h, p);
}

/* A report as report_Build writes it, with the fields compare reads. */
static cJSON *report(const char *arch, int workers, double seconds, double iterations)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "arch", arch);
    cJSON_AddNumberToObject(r, "workers", workers);
    cJSON_AddNumberToObject(r, "epochs", 1);
    cJSON_AddNumberToObject(r, "train_seconds", seconds);
    cJSON_AddNumberToObject(r, "iterations", iterations);
    if (strcmp(arch, "single") != 0) {
        cJSON *d = cJSON_AddObjectToObject(r, "details");
        cJSON_AddNumberToObject(d, "invocations", 1000 * workers);
        cJSON_AddNumberToObject(d, "invocation_seconds", 3.5 * workers);
        cJSON *it = cJSON_AddObjectToObject(d, "iteration_ms");
        cJSON_AddNumberToObject(it, "p50", 10);
        cJSON_AddNumberToObject(it, "p99", workers > 2 ? 80 : 20);
    }
    cJSON *h = cJSON_AddArrayToObject(r, "history");
    add_point(h, 0.5, 10, 1.2, -1);
    add_point(h, 1.0, 20, 0.9, 0.70);
    add_point(h, 1.5, 30, 0.5, -1);     /* no evaluation here */
    add_point(h, 2.0, 40, 0.6, 0.81);
    add_point(h, 3.0, 60, 0.4, 0.85);
    return r;
}

static void to_target_is_the_earliest_evaluated_point(void **state)
{
    (void)state;
    cJSON *r = report("spirt", 4, 3.0, 60);
    const cJSON *h = cJSON_GetObjectItem(r, "history");
    target_reach a = compare_ToTarget(h, "test_accuracy", 0.80, 0);
    assert_true(a.reached);
    assert_true(a.seconds == 2.0 && a.iteration == 40);
    a = compare_ToTarget(h, "test_accuracy", 0.70, 0); /* reached exactly */
    assert_true(a.reached && a.seconds == 1.0 && a.iteration == 20);
    a = compare_ToTarget(h, "test_accuracy", 0.90, 0);
    assert_false(a.reached);
    /* Loss: lower is better; the point without an accuracy counts. */
    a = compare_ToTarget(h, "loss", 0.5, 1);
    assert_true(a.reached && a.seconds == 1.5 && a.iteration == 30);
    a = compare_ToTarget(h, "loss", 0.1, 1);
    assert_false(a.reached);
    assert_false(compare_ToTarget(NULL, "loss", 1.0, 1).reached);
    cJSON_Delete(r);
}

static void cost_split_adds_up_and_counts_instances(void **state)
{
    (void)state;
    const struct {
        const char *arch;
        int redis;
    } runs[] = {{"spirt", 4 + 1}, {"mlless", 1}, {"scatter-reduce", 1}, {"all-reduce", 1}};
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        cJSON *r = report(runs[i].arch, 4, 90.0, 60);
        run_usage u = compare_Usage(r, &prices);
        assert_true(u.serverless);
        assert_int_equal(u.redis_instances, runs[i].redis);
        assert_int_equal(u.nats_instances, 1);
        cost_split c = compare_Cost(&prices, &u);
        double hours = 90.0 / 3600;
        assert_true(fabs(c.functions - (3.5 * 4 * 2.0 * prices.price_gb_second +
                                        4000 / 1e6 * prices.price_per_million)) < 1e-15);
        assert_true(fabs(c.databases - runs[i].redis * hours * prices.price_redis_hour) < 1e-15);
        assert_true(fabs(c.messaging - hours * prices.price_nats_hour) < 1e-15);
        assert_true(c.vm == 0);
        assert_true(fabs(c.functions + c.databases + c.messaging + c.vm - c.total) < 1e-15);
        cJSON_Delete(r);
    }
    cJSON *r = report("single", 4, 90.0, 60);
    run_usage u = compare_Usage(r, &prices);
    assert_false(u.serverless);
    assert_int_equal(u.redis_instances + u.nats_instances, 0);
    cost_split c = compare_Cost(&prices, &u);
    assert_true(c.functions == 0 && c.databases == 0 && c.messaging == 0);
    assert_true(fabs(c.vm - 90.0 / 3600 * prices.price_vm_hour) < 1e-15);
    assert_true(c.total == c.vm);
    cJSON_Delete(r);
}

static void cost_accrues_from_zero_to_the_total(void **state)
{
    (void)state;
    cJSON *r = report("spirt", 2, 4.0, 80);
    run_usage u = compare_Usage(r, &prices);
    cost_split c = compare_Cost(&prices, &u);
    assert_true(compare_CostAt(&c, &u, 0, 0) == 0);
    assert_true(fabs(compare_CostAt(&c, &u, 4.0, 80) - c.total) < 1e-15);
    double half = compare_CostAt(&c, &u, 2.0, 40);
    assert_true(fabs(half - c.total / 2) < 1e-15);
    assert_true(compare_CostAt(&c, &u, 1.0, 40) < half); /* less time, same iterations */
    cJSON_Delete(r);
}

static void slow_tail_is_p99_over_five_medians(void **state)
{
    (void)state;
    assert_false(compare_SlowTail(10, 10 * COMPARE_TAIL_RATIO));
    assert_true(compare_SlowTail(10, 10 * COMPARE_TAIL_RATIO + 0.001));
    assert_false(compare_SlowTail(10, 20));
    assert_false(compare_SlowTail(0, 100)); /* no median: nothing to compare */
}

static const cJSON *row_of(const cJSON *summary, int i)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItem(summary, "architectures"), i);
}

static void summary_has_targets_tail_and_split(void **state)
{
    (void)state;
    cJSON *reports[] = {report("spirt", 4, 3.0, 60), report("all-reduce", 2, 3.0, 60),
                        report("single", 4, 1.0, 240)};
    compare_target reachable = {"test_accuracy", 0.8, 0}, never = {"test_accuracy", 0.9, 0};
    cJSON *s = compare_Summarize(reports, 3, &prices, &reachable);
    for (int i = 0; i < 3; i++) {
        const cJSON *row = row_of(s, i);
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(row, "seconds_to_target")));
        assert_true(cJSON_GetObjectItem(row, "iterations_to_target")->valuedouble == 40);
        const cJSON *b = cJSON_GetObjectItem(row, "cost_breakdown_usd");
        double sum = 0;
        const cJSON *part;
        cJSON_ArrayForEach(part, b) {
            assert_true(part->valuedouble >= 0);
            sum += part->valuedouble;
        }
        assert_true(cJSON_GetObjectItem(b, "functions") && cJSON_GetObjectItem(b, "databases") &&
                    cJSON_GetObjectItem(b, "messaging"));
        assert_true(fabs(sum - compare_Num(row, "cost_usd")) < 1e-15);
    }
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(row_of(s, 0), "slow_tail")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(row_of(s, 1), "slow_tail")));
    assert_null(cJSON_GetObjectItem(row_of(s, 2), "slow_tail")); /* no iteration times */
    assert_true(compare_Num(row_of(s, 0), "redis_instances") == 5);
    cJSON_Delete(s);
    s = compare_Summarize(reports, 3, &prices, &never);
    for (int i = 0; i < 3; i++) {
        assert_true(cJSON_IsNull(cJSON_GetObjectItem(row_of(s, i), "seconds_to_target")));
        assert_true(cJSON_IsNull(cJSON_GetObjectItem(row_of(s, i), "iterations_to_target")));
    }
    cJSON_Delete(s);
    for (int i = 0; i < 3; i++)
        cJSON_Delete(reports[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(to_target_is_the_earliest_evaluated_point),
        cmocka_unit_test(cost_split_adds_up_and_counts_instances),
        cmocka_unit_test(cost_accrues_from_zero_to_the_total),
        cmocka_unit_test(slow_tail_is_p99_over_five_medians),
        cmocka_unit_test(summary_has_targets_tail_and_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
