/* names.h - enum <-> name tables (architectures, models, optimizers,
 * aggregation rules, attacks): one lookup instead of a loop per enum. */
#ifndef SPIRT_NAMES_H
#define SPIRT_NAMES_H

#include <stddef.h>

typedef struct {
    int value;
    const char *name;
} sp_name;

#define NAMES_COUNT(t) (sizeof(t) / sizeof((t)[0]))

/* Finds `name` (case-insensitively when fold_case) and stores its value;
 * returns 1 when found, 0 otherwise (also for a NULL name). */
int names_Find(const sp_name *t, size_t n, const char *name, int fold_case, int *value);
/* The name of `value`, or "unknown". */
const char *names_Of(const sp_name *t, size_t n, int value);

#endif
