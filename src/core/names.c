/* names.c - enum <-> name table lookups. */
#include "core/names.h"

#include <string.h>
#include <strings.h>

int names_Find(const sp_name *t, size_t n, const char *name, int fold_case, int *value)
{
    for (size_t i = 0; name && i < n; i++)
        if ((fold_case ? strcasecmp(name, t[i].name) : strcmp(name, t[i].name)) == 0) {
            *value = t[i].value;
            return 1;
        }
    return 0;
}

const char *names_Of(const sp_name *t, size_t n, int value)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].value == value)
            return t[i].name;
    return "unknown";
}
