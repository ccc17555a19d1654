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

typedef struct {
    arch_kind archs[MAX_ARCHS];
    int n_archs;
    char out[400];
    cost_model cost;
} compare_options;

static void compare_Usage(FILE *f)
{
    fprintf(f, "usage: spirt compare [options]\n\n"
               "Runs the same job (model, data, workers, batch, lr, epochs, seed) on each\n"
               "architecture and writes DIR/compare.md, DIR/compare.json and DIR/compare.svg\n"
               "(test accuracy and training loss against wall-clock time).\n\n"
               "compare options:\n"
               "  --archs LIST               default spirt,mlless,scatter-reduce,all-reduce\n"
               "  --out DIR                  output directory (default compare-out)\n"
               "  --price-gb-second USD      price per function GB-second (default 0.0000166667)\n"
               "  --price-per-million USD    price per million invocations (default 0.20)\n"
               "  --memory-mb MB             memory per function instance (default 1024)\n\n"
               "job options (as for spirt train):\n");
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
        spStatus st = job_ParseArch(t, &o->archs[o->n_archs++]);
        if (st)
            return sp_Wrap(st, "--archs");
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
    *o = (compare_options){.cost = {0.0000166667, 0.20, 1.0}};
    snprintf(o->out, sizeof o->out, "compare-out");
    spStatus st = parse_archs("spirt,mlless,scatter-reduce,all-reduce", o);
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
        else if (!strcmp(a, "--memory-mb") && has) {
            if (!(st = parse_price("memory-mb", argv[++i], &mb)))
                o->cost.memory_gb = mb / 1024.0;
        } else
            rest[n++] = argv[i];
    }
    *rest_argc = n;
    return st;
}

static int run_Compare(const job_config *base, const compare_options *o)
{
    cJSON *reports[MAX_ARCHS];
    int n = 0, rc = 0;
    for (int i = 0; i < o->n_archs; i++) {
        job_config job = *base;
        job.arch = o->archs[i];
        job.report[0] = '\0';
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
        cJSON *summary = compare_Summarize(reports, n, &o->cost);
        cJSON *runs = cJSON_AddArrayToObject(summary, "runs");
        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(runs, cJSON_Duplicate(reports[i], 1));
        char *text = compare_Markdown(summary);
        if (text)
            printf("\n%s", text);
        free(text);
        if (compare_WriteMarkdown(md, summary) || report_Write(js, summary) ||
            compare_WriteSvg(svg, reports, n)) {
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
        compare_Usage(stdout);
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
    for (int i = 0; !st && i < o.n_archs; i++) {
        job_config each = job;
        each.arch = o.archs[i];
        if ((st = train_Check(&each)))
            sp_Wrap(st, "--archs %s", job_ArchName(each.arch));
    }
    if (!st && mkdir(o.out, 0755) != 0 && errno != EEXIST)
        st = sp_Error(SP_ERR_INVALID, "--out %s: cannot create it: %s", o.out, strerror(errno));
    if (st) {
        fprintf(stderr, "spirt compare: %s\n", sp_LastError());
        return 2;
    }
    return run_Compare(&job, &o);
}
