/* cmd_compare.c - `spirt compare`: the same job on every architecture. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "cli/compare.h"
#include "cli/options.h"
#include "cli/progress.h"
#include "cli/report.h"
#include "driver/train.h"

#define MAX_ARCHS 5
/* Test-accuracy points per epoch when --eval-every is not given. */
#define EVALS_PER_EPOCH 10

/* List prices (USD), AWS us-east-1 on-demand as published in 2024 (from
 * the public price pages as remembered; this machine has no network to
 * check them, so every one is an option):
 * Lambda x86 0.0000166667 per GB-second and 0.20 per million requests;
 * ElastiCache cache.t4g.micro (a small Redis node) 0.016 per hour; EC2
 * t3.micro (a small VM for nats-server) 0.0104 per hour; EC2 c5.large (2
 * vCPU, 4 GiB: the VM `single` trains on) 0.085 per hour. */
static const cost_model default_cost = {
    .price_gb_second = 0.0000166667, .price_per_million = 0.20, .memory_gb = 1.0,
    .price_redis_hour = 0.016, .price_nats_hour = 0.0104, .price_vm_hour = 0.085};

typedef struct {
    arch_kind archs[MAX_ARCHS];
    int n_archs;
    char out[400];
    cost_model cost;
    double target_accuracy;      /* 0: none */
} compare_options;

static void compare_Help(FILE *f)
{
    fprintf(f, "usage: spirt compare [options]\n\n"
               "Runs the same job (model, data, workers, batch, lr, epochs, seed) on each\n"
               "architecture, each on a system of its own (fresh servers; its own --job\n"
               "name, NAME-ARCH, on running services), and writes DIR/compare.md,\n"
               "DIR/compare.json and DIR/compare.svg (test accuracy against training time\n"
               "and against cost, training loss against time). Times are training time\n"
               "from the first iteration, evaluations excluded. Without --eval-every,\n"
               "each run evaluates test accuracy %d times per epoch.\n\n"
               "compare options:\n"
               "  --archs LIST               default spirt,mlless,scatter-reduce,all-reduce,single\n"
               "  --out DIR                  output directory (default compare-out)\n"
               "  --target-accuracy A        time and iterations to test accuracy >= A, 0 < A <= 1;\n"
               "                             else, with --target-loss L, to the smoothed training\n"
               "                             loss <= L (as in train, a run stops at an epoch end below L)\n"
               "  --price-gb-second USD      function GB-second (default %.10f, AWS Lambda)\n"
               "  --price-per-million USD    million function invocations (default %g, AWS Lambda)\n"
               "  --memory-mb MB             memory per function instance (default %g)\n"
               "  --price-redis-hour USD     a Redis instance per hour (default %g, ElastiCache\n"
               "                             cache.t4g.micro); SPIRT uses one per peer + the shared one\n"
               "  --price-nats-hour USD      the NATS server per hour (default %g, EC2 t3.micro)\n"
               "  --price-vm-hour USD        the VM `single` trains on per hour (default %g, EC2\n"
               "                             c5.large, 2 vCPU)\n"
               "Instances are billed for each run's training time.\n\n"
               "job options (as for spirt train):\n",
            EVALS_PER_EPOCH, default_cost.price_gb_second, default_cost.price_per_million,
            default_cost.memory_gb * 1024, default_cost.price_redis_hour,
            default_cost.price_nats_hour, default_cost.price_vm_hour);
    options_PrintHelp(f);
}

static spStatus parse_archs(const char *list, compare_options *o)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    o->n_archs = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->n_archs == MAX_ARCHS)
            return sp_Error(SP_ERR_INVALID, "--archs: at most %d architectures", MAX_ARCHS);
        spStatus st = job_ParseArch(t, &o->archs[o->n_archs]);
        if (st)
            return sp_Wrap(st, "--archs");
        for (int k = 0; k < o->n_archs; k++)
            if (o->archs[k] == o->archs[o->n_archs]) /* one job name per architecture */
                return sp_Error(SP_ERR_INVALID, "--archs: %s given twice", t);
        o->n_archs++;
    }
    return o->n_archs ? SP_OK : sp_Error(SP_ERR_INVALID, "--archs: empty list");
}

static spStatus parse_price(const char *name, const char *v, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x) || x < 0)
        return sp_Error(SP_ERR_INVALID, "--%s '%s': expected a non-negative number", name, v);
    *out = x;
    return SP_OK;
}

/* Takes the compare-only options out of argv; the rest are job options. */
static spStatus compare_Parse(int argc, char **argv, compare_options *o, int *rest_argc,
                              char **rest)
{
    *o = (compare_options){.cost = default_cost};
    snprintf(o->out, sizeof o->out, "compare-out");
    spStatus st = parse_archs("spirt,mlless,scatter-reduce,all-reduce,single", o);
    int n = 0;
    rest[n++] = argv[0];
    rest[n++] = argv[1];
    for (int i = 2; i < argc && !st; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        double mb;
        if (!strcmp(a, "--archs") && has)
            st = parse_archs(argv[++i], o);
        else if (!strcmp(a, "--out") && has)
            snprintf(o->out, sizeof o->out, "%s", argv[++i]);
        else if (!strcmp(a, "--price-gb-second") && has)
            st = parse_price("price-gb-second", argv[++i], &o->cost.price_gb_second);
        else if (!strcmp(a, "--price-per-million") && has)
            st = parse_price("price-per-million", argv[++i], &o->cost.price_per_million);
        else if (!strcmp(a, "--price-redis-hour") && has)
            st = parse_price("price-redis-hour", argv[++i], &o->cost.price_redis_hour);
        else if (!strcmp(a, "--price-nats-hour") && has)
            st = parse_price("price-nats-hour", argv[++i], &o->cost.price_nats_hour);
        else if (!strcmp(a, "--price-vm-hour") && has)
            st = parse_price("price-vm-hour", argv[++i], &o->cost.price_vm_hour);
        else if (!strcmp(a, "--target-accuracy") && has) {
            if (!(st = parse_price("target-accuracy", argv[++i], &o->target_accuracy)) &&
                !(o->target_accuracy > 0 && o->target_accuracy <= 1))
                st = sp_Error(SP_ERR_INVALID, "--target-accuracy %s: expected 0 < A <= 1",
                              argv[i]);
        } else if (!strcmp(a, "--memory-mb") && has) {
            if (!(st = parse_price("memory-mb", argv[++i], &mb)))
                o->cost.memory_gb = mb / 1024.0;
        } else
            rest[n++] = argv[i];
    }
    *rest_argc = n;
    return st;
}

/* Each run's job: its architecture, its own job name (keys and the NATS
 * stream are namespaced by it, so on running services no run sees
 * another's state; locally every run starts its own servers anyway), and
 * without --eval-every, EVALS_PER_EPOCH test-accuracy points per epoch
 * (n_train: the training samples, 0 when unknown). */
static spStatus arch_Job(const job_config *base, arch_kind a, size_t n_train, job_config *out)
{
    *out = *base;
    out->arch = a;
    out->report[0] = '\0';
    int len = snprintf(out->id, sizeof out->id, "%s-%s", base->id, job_ArchName(a));
    if (len < 0 || (size_t)len >= sizeof out->id)
        return sp_Error(SP_ERR_INVALID, "--job %s: too long for spirt compare, which adds -%s",
                        base->id, job_ArchName(a));
    if (base->eval_every > 0 || n_train == 0)
        return SP_OK;
    job_config one = *out;
    if (a == ARCH_SINGLE) /* one batch an iteration, as train_single.c runs it */
        one.workers = one.minibatches = 1;
    long iters;
    if (job_ItersPerEpoch(&one, n_train, &iters))
        return SP_OK; /* train_Check reports it */
    out->eval_every = iters / EVALS_PER_EPOCH > 1 ? iters / EVALS_PER_EPOCH : 1;
    return SP_OK;
}

static compare_target compare_Target(const job_config *job, const compare_options *o)
{
    if (o->target_accuracy > 0)
        return (compare_target){"test_accuracy", o->target_accuracy, 0};
    if (job->target_loss > 0) { /* the float as given (0.9, not 0.899999976) */
        char given[32];
        snprintf(given, sizeof given, "%.7g", job->target_loss);
        return (compare_target){"loss", strtod(given, NULL), 1};
    }
    return (compare_target){NULL, 0, 0};
}

static int run_Compare(const job_config *base, const compare_options *o, size_t n_train)
{
    cJSON *reports[MAX_ARCHS];
    int n = 0, rc = 0;
    for (int i = 0; i < o->n_archs; i++) {
        job_config job;
        arch_Job(base, o->archs[i], n_train, &job); /* checked in cmd_Compare */
        printf("== %s (%d/%d)\n", job_ArchName(job.arch), i + 1, o->n_archs);
        progress prog;
        progress_Init(&prog, stdout, job_ArchName(job.arch), job.epochs, job.quiet);
        train_observer obs = progress_Observer(&prog);
        train_result res;
        spStatus st = train_Run(&job, &obs, &res);
        if (st) {
            fprintf(stderr, "spirt compare: %s failed: %s\n", job_ArchName(job.arch),
                    sp_LastError());
            train_ResultFree(&res);
            rc = 1;
            break;
        }
        reports[n++] = report_Build(&job, &res);
        train_ResultFree(&res);
    }
    if (rc == 0) {
        char md[512], js[512], svg[512];
        snprintf(md, sizeof md, "%s/compare.md", o->out);
        snprintf(js, sizeof js, "%s/compare.json", o->out);
        snprintf(svg, sizeof svg, "%s/compare.svg", o->out);
        compare_target target = compare_Target(base, o);
        cJSON *summary = compare_Summarize(reports, n, &o->cost, &target);
        cJSON *runs = cJSON_AddArrayToObject(summary, "runs");
        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(runs, cJSON_Duplicate(reports[i], 1));
        char *text = compare_Markdown(summary);
        if (text)
            printf("\n%s", text);
        free(text);
        if (compare_WriteMarkdown(md, summary) || report_Write(js, summary) ||
            compare_WriteSvg(svg, reports, n, &o->cost, &target)) {
            fprintf(stderr, "spirt compare: %s\n", sp_LastError());
            rc = 1;
        } else {
            printf("\nwrote %s, %s, %s\n", md, js, svg);
        }
        cJSON_Delete(summary);
    }
    for (int i = 0; i < n; i++)
        cJSON_Delete(reports[i]);
    return rc;
}

/* How many training samples the job's data has (after --train-samples),
 * for the default --eval-every; 0 when the data cannot be opened (the
 * runs report why). */
static size_t training_Samples(const job_config *job)
{
    dataset train, test;
    model_spec spec;
    size_t n = 0;
    if (train_OpenData(job, &train, &test, &spec) == SP_OK) {
        n = train.n;
        dataset_Free(&train);
        dataset_Free(&test);
    }
    return n;
}

int cmd_Compare(int argc, char **argv)
{
    compare_options o;
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int rest_argc = 0, help = 0;
    job_config job;
    job_Defaults(&job);
    job.workers = 4;
    options_given given;
    spStatus st = rest ? compare_Parse(argc, argv, &o, &rest_argc, rest)
                       : sp_Error(SP_ERR_NOMEM, "out of memory");
    if (!st)
        st = options_Parse(rest_argc, rest, 2, &job, &help, &given);
    free(rest);
    if (!st && help) {
        compare_Help(stdout);
        return 0;
    }
    /* Usage errors (exit 2, commands.h) before the first run starts: each
     * option applies to at least one compared architecture, each run's job
     * is valid, the output dir can be made. */
    unsigned archs = 0;
    for (int i = 0; !st && i < o.n_archs; i++)
        archs |= options_ArchMask(o.archs[i]);
    if (!st)
        st = options_CheckApplies(&given, &job, archs, 1);
    size_t n_train = 0;
    if (!st && job.eval_every == 0)
        n_train = training_Samples(&job);
    for (int i = 0; !st && i < o.n_archs; i++) {
        job_config each;
        if (!(st = arch_Job(&job, o.archs[i], n_train, &each)) && (st = train_Check(&each)))
            sp_Wrap(st, "--archs %s", job_ArchName(each.arch));
    }
    if (!st && mkdir(o.out, 0755) != 0 && errno != EEXIST)
        st = sp_Error(SP_ERR_INVALID, "--out %s: cannot create it: %s", o.out, strerror(errno));
    if (st) {
        fprintf(stderr, "spirt compare: %s\n", sp_LastError());
        return 2;
    }
    return run_Compare(&job, &o, n_train);
}
