/* options.h - command-line options of `spirt train` / `spirt compare`.
 *
 * One table describes every option: its name, argument, help line and how it
 * sets the job. Each option may also come from the environment as
 * SPIRT_<NAME> (upper case, '-' -> '_'), which is how the Kubernetes Job
 * configures the driver; the command line wins over the environment. */
#ifndef SPIRT_OPTIONS_H
#define SPIRT_OPTIONS_H

#include <stdio.h>

#include "job/job.h"

#define OPTIONS_MAX 64

/* Which options the command line gave (the environment's do not count). */
typedef struct {
    unsigned char set[OPTIONS_MAX];
} options_given;

/* Applies environment then argv[first..argc-1] to j. Unknown options,
 * missing or malformed values: SP_ERR_INVALID with a message naming the
 * option. Sets *help when --help/-h was given. Cross-field validation is
 * left to the caller (train_Check). */
spStatus options_Parse(int argc, char **argv, int first, job_config *j, int *help,
                       options_given *given);
/* Refuses (SP_ERR_INVALID, naming both options) an option the command line
 * gave that applies to none of the architectures in `archs` (a mask of
 * options_ArchMask bits: the one --arch of `spirt train`, the --archs of
 * `spirt compare`), one that needs HTTP with --transport inproc, and, with
 * compare set, one that only `spirt train` takes. */
spStatus options_CheckApplies(const options_given *given, const job_config *j, unsigned archs,
                              int compare);
unsigned options_ArchMask(arch_kind a);
/* Prints the option reference, where each option applies and the exit
 * statuses. */
void options_PrintHelp(FILE *f);

#endif
