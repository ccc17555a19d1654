/* secret_env.h - secrets from the environment or from files.
 *
 * A secret NAME (env_names.h: the Redis and NATS passwords, the join key,
 * the bearer token) is given either as NAME=value or as NAME_FILE=path, the
 * path of a file holding it - a mounted Kubernetes Secret, or the 0600 files
 * of a local run - so that the value appears on no command line and in no
 * environment a child process could inherit. Both the function runtime and
 * the driver read them here: one rule for trimming, limits and conflicts. */
#ifndef SPIRT_SECRET_ENV_H
#define SPIRT_SECRET_ENV_H

#include <stddef.h>

#include "core/status.h"

/* The longest secret value accepted, in bytes. */
#define SECRET_MAX 4095

/* Reads the secret held by the file at path (surrounding whitespace
 * trimmed: Secrets often end in a newline) into out (cap bytes, at least
 * SECRET_MAX + 1). SP_ERR_INVALID naming var and path when the file cannot
 * be read, is empty, too long, or holds control characters. */
spStatus secret_FromFile(const char *var, const char *path, char *out, size_t cap);

/* The secret var into out: from var_FILE when that is set (an error if var
 * is set too), else var's value, else "". */
spStatus secret_Get(const char *var, char *out, size_t cap);

/* For each of vars[0..n-1] given as var_FILE, reads the file and sets var
 * in this process's environment (var_FILE is then unset), so code that
 * reads var with getenv works with either form. Nothing is changed when a
 * file is wrong: the error names it. */
spStatus secret_EnvFromFiles(const char *const *vars, size_t n);

#endif
