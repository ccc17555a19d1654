/* server_conf.h - configuration files for redis-server and nats-server, and
 * secret files for the function processes.
 *
 * A password on a command line is readable by every local user in
 * /proc/PID/cmdline. So the local runner (and the test fixtures) write each
 * server's settings, credentials included, to a file of mode 0600 and pass
 * the server only its path; function processes get file paths
 * (SPIRT_TOKEN_FILE, SPIRT_REDIS_PASSWORD_FILE, ...) instead of values. */
#ifndef SPIRT_SERVER_CONF_H
#define SPIRT_SERVER_CONF_H

#include "core/status.h"

typedef struct {
    int port;                 /* listens on 127.0.0.1:port */
    const char *dir;          /* working dir (AOF) */
    int appendonly;           /* AOF, every write fsync'd before the answer */
    const char *user;         /* the one ACL user (all rights; the default user
                                 is switched off); NULL: password for the
                                 default user (requirepass) */
    const char *password;     /* NULL: no authentication */
    const char *module;       /* module to load, or NULL */
} redis_conf;

typedef struct {
    int port;                 /* listens on 127.0.0.1:port */
    const char *store_dir;    /* JetStream store */
    const char *user;         /* NULL: no authentication */
    const char *password;
} nats_conf;

/* Write the file at `path` (mode 0600, replacing an older one). */
spStatus conf_WriteRedis(const char *path, const redis_conf *c);
spStatus conf_WriteNats(const char *path, const nats_conf *c);
/* A file of mode 0600 holding exactly `secret`. */
spStatus conf_WriteSecret(const char *path, const char *secret);

#endif
