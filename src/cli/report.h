/* report.h - the JSON report of a training run. */
#ifndef SPIRT_REPORT_H
#define SPIRT_REPORT_H

#include <cJSON.h>

#include "job/job.h"
#include "driver/train.h"

/* Builds the report object: the job's settings, the results, the
 * architecture's details and the curve. Caller deletes it. */
cJSON *report_Build(const job_config *job, const train_result *res);
/* Whether the report can be written to path (--report), checked before a
 * run so a bad path does not surface only after training: SP_ERR_INVALID
 * naming the path and the reason. */
spStatus report_Check(const char *path);
/* Writes JSON to path atomically (temp file + rename): a crash never leaves
 * half a report behind. */
spStatus report_Write(const char *path, const cJSON *report);

#endif
