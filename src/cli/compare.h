/* compare.h - `spirt compare`: the four architectures on one job, side by
 * side, as a Markdown table, JSON and an SVG plot. */
#ifndef SPIRT_COMPARE_H
#define SPIRT_COMPARE_H

#include <cJSON.h>

#include "core/status.h"

typedef struct {
    double price_gb_second;      /* serverless price per GB-second */
    double price_per_million;    /* price per million invocations */
    double memory_gb;            /* memory assumed per function instance */
} cost_model;

/* One row per run report (as written by report_Build). Adds the derived
 * numbers (time per epoch by category, cost) to a new JSON summary. */
cJSON *compare_Summarize(cJSON *const *reports, int n, const cost_model *cost);
/* Writes the summary as a Markdown table. */
spStatus compare_WriteMarkdown(const char *path, const cJSON *summary);
/* Plots test accuracy and training loss against wall-clock time. */
spStatus compare_WriteSvg(const char *path, cJSON *const *reports, int n);
/* The Markdown text (malloc'd), also printed by the command. */
char *compare_Markdown(const cJSON *summary);

#endif
