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

/* Applies environment then argv[first..argc-1] to j. Unknown options,
 * missing or malformed values: SP_ERR_INVALID with a message naming the
 * option. Sets *help when --help/-h was given. */
spStatus options_Parse(int argc, char **argv, int first, job_config *j, int *help);
/* Prints the option reference. */
void options_PrintHelp(FILE *f);

#endif
