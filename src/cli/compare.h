/* compare.h - `spirt compare`: the architectures on one job, side by side,
 * as a Markdown table, JSON and an SVG plot. */
#ifndef SPIRT_COMPARE_H
#define SPIRT_COMPARE_H

#include <cJSON.h>

#include "core/status.h"

/* Prices of what a run uses, all USD (defaults and their sources:
 * cmd_compare.c). Instances are billed for the run's training time. */
typedef struct {
    double price_gb_second;      /* serverless price per GB-second */
    double price_per_million;    /* price per million invocations */
    double memory_gb;            /* memory assumed per function instance */
    double price_redis_hour;     /* one Redis (cache) instance per hour */
    double price_nats_hour;      /* one NATS server (a small VM) per hour */
    double price_vm_hour;        /* the one VM `single` trains on, per hour */
} cost_model;

/* What a run used, read from its report (compare_Usage). */
typedef struct {
    int serverless;              /* 0 for `single`: one VM, no functions */
    int redis_instances;         /* per-peer databases + the shared one, or the shared one */
    int nats_instances;
    double gb_seconds;           /* function invocation seconds x memory */
    double invocations;
    double seconds;              /* training time: the instances' billed time */
    double iterations;
} run_usage;

/* The whole cost of a run; total = functions + databases + messaging + vm. */
typedef struct {
    double functions, databases, messaging, vm, total;
} cost_split;

/* Where a run's curve first reaches a target. */
typedef struct {
    int reached;
    double seconds;              /* history "t": training time since the first iteration */
    double iteration;
} target_reach;

/* p99 iteration time above this many medians flags a run's slow tail. */
#define COMPARE_TAIL_RATIO 5.0

/* ---- the pure numbers (compare_metrics.c) ---- */
/* A report's number (0 when absent) and string ("" when absent). */
double compare_Num(const cJSON *o, const char *k);
const char *compare_Str(const cJSON *o, const char *k);
run_usage compare_Usage(const cJSON *report, const cost_model *m);
cost_split compare_Cost(const cost_model *m, const run_usage *u);
/* The cost accrued by a point of the curve at training time t and
 * iteration it: functions pro rata of iterations, instances of time. */
double compare_CostAt(const cost_split *c, const run_usage *u, double t, double it);
/* The earliest point (least t) of history whose `key` is >= target (below = 0) or
 * <= target (below = 1). */
target_reach compare_ToTarget(const cJSON *history, const char *key, double target, int below);
/* 1 when p99 > COMPARE_TAIL_RATIO x p50 (p50 > 0). */
int compare_SlowTail(double p50, double p99);

/* ---- summary, table, plot ---- */
/* The target of a comparison: a history key, its value, and whether lower
 * is better (loss). key NULL: no target. */
typedef struct {
    const char *key;
    double value;
    int below;
} compare_target;

/* One row per run report (as written by report_Build). Adds the derived
 * numbers (time per epoch by category, time to target, cost) to a new JSON
 * summary. */
cJSON *compare_Summarize(cJSON *const *reports, int n, const cost_model *cost,
                         const compare_target *target);
/* Writes the summary as a Markdown table. */
spStatus compare_WriteMarkdown(const char *path, const cJSON *summary);
/* Plots test accuracy against training time and against cost, and
 * training loss against time; the target, if any, as a dashed line. */
spStatus compare_WriteSvg(const char *path, cJSON *const *reports, int n, const cost_model *cost,
                          const compare_target *target);
/* The Markdown text (malloc'd), also printed by the command. */
char *compare_Markdown(const cJSON *summary);

#endif
