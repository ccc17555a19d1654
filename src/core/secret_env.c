/* secret_env.c - secrets from the environment or from files (secret_env.h). */
#define _POSIX_C_SOURCE 200809L
#include "core/secret_env.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/env_names.h"

static int is_Space(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

spStatus secret_FromFile(const char *var, const char *path, char *out, size_t cap)
{
    if (cap < SECRET_MAX + 1)
        return sp_Error(SP_ERR_INVALID, "%s: no room for a secret", var);
    FILE *f = fopen(path, "rb");
    if (!f)
        return sp_Error(SP_ERR_INVALID, "cannot read %s%s %s: %s", var, ENV_FILE_SUFFIX, path,
                        strerror(errno));
    char buf[SECRET_MAX + 2]; /* one more than accepted, to see a longer file */
    size_t n = fread(buf, 1, sizeof buf, f);
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return sp_Error(SP_ERR_INVALID, "cannot read %s%s %s", var, ENV_FILE_SUFFIX, path);
    size_t a = 0, b = n;
    while (a < b && is_Space(buf[a]))
        a++;
    while (b > a && is_Space(buf[b - 1]))
        b--;
    if (n == sizeof buf || b - a > SECRET_MAX)
        return sp_Error(SP_ERR_INVALID, "%s%s %s is longer than %d bytes", var, ENV_FILE_SUFFIX,
                        path, SECRET_MAX);
    for (size_t i = a; i < b; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            return sp_Error(SP_ERR_INVALID, "%s%s %s holds control characters", var,
                            ENV_FILE_SUFFIX, path);
    if (a == b)
        return sp_Error(SP_ERR_INVALID, "%s%s %s is empty", var, ENV_FILE_SUFFIX, path);
    memcpy(out, buf + a, b - a);
    out[b - a] = '\0';
    return SP_OK;
}

spStatus secret_Get(const char *var, char *out, size_t cap)
{
    char name[64];
    snprintf(name, sizeof name, "%s%s", var, ENV_FILE_SUFFIX);
    const char *path = getenv(name), *direct = getenv(var);
    out[0] = '\0';
    if (path && path[0]) {
        if (direct && direct[0])
            return sp_Error(SP_ERR_INVALID, "set %s or %s, not both", var, name);
        return secret_FromFile(var, path, out, cap);
    }
    if (direct && direct[0]) {
        if (strlen(direct) > SECRET_MAX || strlen(direct) >= cap)
            return sp_Error(SP_ERR_INVALID, "%s is longer than %d bytes", var, SECRET_MAX);
        strcpy(out, direct);
    }
    return SP_OK;
}

spStatus secret_EnvFromFiles(const char *const *vars, size_t n)
{
    char value[SECRET_MAX + 1];
    spStatus st = SP_OK;
    /* Every file is checked before anything is set. */
    for (size_t i = 0; i < n && !st; i++)
        st = secret_Get(vars[i], value, sizeof value);
    for (size_t i = 0; i < n && !st; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%s", vars[i], ENV_FILE_SUFFIX);
        const char *path = getenv(name);
        if (!path || !path[0])
            continue;
        if (!(st = secret_FromFile(vars[i], path, value, sizeof value))) {
            if (setenv(vars[i], value, 1))
                st = sp_Error(SP_ERR_NOMEM, "cannot set %s", vars[i]);
            else
                unsetenv(name);
        }
    }
    memset(value, 0, sizeof value);
    return st;
}
