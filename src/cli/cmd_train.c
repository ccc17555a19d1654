/* cmd_train.c - `spirt train`: parse, run, summarize, report. */
#include <stdio.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/progress.h"
#include "cli/report.h"
#include "driver/train.h"

static void train_Usage(FILE *f)
{
    fprintf(f, "usage: spirt train [options]\n\n"
               "Trains a model and prints test accuracy after each epoch. Distributed\n"
               "architectures run locally with real redis-server and nats-server\n"
               "processes and every step as its own HTTP function, unless --functions,\n"
               "--peers, --shared-redis and --nats point at running ones (a cluster).\n\n"
               "options:\n");
    options_PrintHelp(f);
}

static void print_summary(const job_config *job, const train_result *res)
{
    printf("done: %s %s, %d worker(s), %d epoch(s), %ld iterations in %.1f s "
           "(%.0f samples/s); final loss %.4f; test accuracy %.4f\n",
           job_ArchName(job->arch), model_KindName(job->model.kind), job->workers,
           res->epochs_run, res->iterations, res->train_seconds, res->samples_per_second,
           res->final_loss, res->test_accuracy);
}

/* Exit statuses (commands.h): 2 for anything the user must change on the
 * command line - found before training starts -, 1 for everything that
 * fails once it runs. */
int cmd_Train(int argc, char **argv)
{
    job_config job;
    options_given given;
    int help;
    job_Defaults(&job);
    spStatus st = options_Parse(argc, argv, 2, &job, &help, &given);
    if (st == SP_OK && help) {
        train_Usage(stdout);
        return 0;
    }
    if (st == SP_OK)
        st = options_CheckApplies(&given, &job, options_ArchMask(job.arch), 0);
    if (st == SP_OK)
        st = train_Check(&job);
    if (st == SP_OK && job.report[0])
        st = report_Check(job.report);
    if (st != SP_OK) {
        fprintf(stderr, "spirt train: %s\n", sp_LastError());
        return 2;
    }
    /* One process: a worker count from the environment does not apply. */
    if (job.arch == ARCH_SINGLE)
        job.workers = 1;
    progress prog;
    progress_Init(&prog, stdout, job_ArchName(job.arch), job.epochs, job.quiet);
    train_observer obs = progress_Observer(&prog);
    train_result res;
    st = train_Run(&job, &obs, &res);
    if (st != SP_OK) {
        char err[SP_ERROR_MAX];
        snprintf(err, sizeof err, "%s", sp_LastError());
        fprintf(stderr, "spirt train: %s\n", err);
        /* A run that got as far as checking the final models (e.g. they
         * differ) still leaves its report: it is the evidence. */
        if (job.report[0] && cJSON_GetObjectItemCaseSensitive(res.details, "final_models")) {
            cJSON *r = report_Build(&job, &res);
            cJSON_AddStringToObject(r, "error", err);
            if (report_Write(job.report, r) != SP_OK)
                fprintf(stderr, "spirt train: %s\n", sp_LastError());
            cJSON_Delete(r);
        }
        train_ResultFree(&res);
        return 1;
    }
    print_summary(&job, &res);
    int rc = 0;
    if (job.report[0]) {
        cJSON *r = report_Build(&job, &res);
        if (report_Write(job.report, r) != SP_OK) {
            fprintf(stderr, "spirt train: %s\n", sp_LastError());
            rc = 1;
        }
        cJSON_Delete(r);
    }
    train_ResultFree(&res);
    return rc;
}
