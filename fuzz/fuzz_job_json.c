/* fuzz_job_json.c - a step request's "job" object: cJSON_ParseWithLength
 * then job_FromJson (job/job.h), as every step does first.
 *
 * The input is the JSON text of the job object itself. Besides "no crash,
 * no leak", a job that was accepted must survive job_ToJson -> job_FromJson
 * unchanged: the driver serialises exactly that way to every function, so a
 * config that does not round-trip would be accepted by the driver and then
 * rejected (or silently changed) by a step. */
#include <string.h>

#include <cJSON.h>

#include "job/job.h"
#include "fuzz_util.h"

static char *job_Text(const job_config *j)
{
    cJSON *o = job_ToJson(j);
    FZ_CHECK(o != NULL, "job_ToJson returned NULL");
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    FZ_CHECK(text != NULL, "cJSON_PrintUnformatted failed");
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *o = cJSON_ParseWithLength((const char *)data, size);
    job_config j;
    job_Defaults(&j);
    sp_ClearError();
    spStatus s = job_FromJson(o, &j);
    cJSON_Delete(o);
    if (s != SP_OK) {
        FZ_CHECK(sp_LastError()[0] != '\0', "status %d without a message", (int)s);
        return 0;
    }
    FZ_CHECK(job_Validate(&j) == SP_OK, "accepted job fails validation: %s", sp_LastError());

    char *first = job_Text(&j);
    cJSON *o2 = cJSON_Parse(first);
    FZ_CHECK(o2 != NULL, "job_ToJson output does not parse: %s", first);
    job_config k;
    job_Defaults(&k);
    s = job_FromJson(o2, &k);
    cJSON_Delete(o2);
    FZ_CHECK(s == SP_OK, "job_ToJson output rejected: %s (%s)", sp_LastError(), first);
    char *second = job_Text(&k);
    FZ_CHECK(strcmp(first, second) == 0, "round trip changed the job:\n  %s\n  %s", first,
             second);
    free(first);
    free(second);
    return 0;
}
