/* server_conf.c - configuration and secret files of mode 0600 (server_conf.h). */
#include "driver/server_conf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Opens `path` for writing with mode 0600 whatever the umask, and whoever
 * created an older file of that name. */
static spStatus conf_Open(const char *path, FILE **out)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return sp_Error(SP_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return sp_Error(SP_ERR_NOMEM, "cannot write %s", path);
    }
    *out = f;
    return SP_OK;
}

static spStatus conf_Close(FILE *f, const char *path)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return sp_Error(SP_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return SP_OK;
}

/* A double-quoted string both config languages read back as `s`: Redis
 * (sdssplitargs) and NATS both take \" and \\ inside double quotes. */
static void conf_Quote(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* before, then the value quoted, then after. */
static void conf_Item(FILE *f, const char *before, const char *value, const char *after)
{
    fputs(before, f);
    conf_Quote(f, value);
    fputs(after, f);
}

spStatus conf_WriteRedis(const char *path, const redis_conf *c)
{
    FILE *f;
    spStatus st = conf_Open(path, &f);
    if (st)
        return st;
    fprintf(f, "port %d\nbind 127.0.0.1\nsave \"\"\n", c->port);
    conf_Item(f, "dir ", c->dir, "\n");
    fprintf(f, "appendonly %s\n", c->appendonly ? "yes" : "no");
    /* Fault tolerance: a SIGKILLed peer must not lose an acknowledged update,
     * so every write is on disk before Redis answers. */
    if (c->appendonly)
        fputs("appendfsync always\n", f);
    if (c->password && c->user) {
        /* The default user (any client that sends only a password) is off;
         * the one user the steps log in as has every right. */
        char rule[300];
        snprintf(rule, sizeof rule, ">%s", c->password);
        conf_Item(f, "user default off\nuser ", c->user, " on ");
        conf_Item(f, "", rule, " ~* &* +@all\n");
    } else if (c->password) {
        conf_Item(f, "requirepass ", c->password, "\n");
    }
    if (c->module)
        conf_Item(f, "loadmodule ", c->module, "\n");
    return conf_Close(f, path);
}

spStatus conf_WriteNats(const char *path, const nats_conf *c)
{
    FILE *f;
    spStatus st = conf_Open(path, &f);
    if (st)
        return st;
    fprintf(f, "listen: \"127.0.0.1:%d\"\n", c->port);
    conf_Item(f, "jetstream {\n  store_dir: ", c->store_dir, "\n}\n");
    if (c->user && c->password) {
        conf_Item(f, "authorization {\n  user: ", c->user, "\n");
        conf_Item(f, "  password: ", c->password, "\n}\n");
    }
    return conf_Close(f, path);
}

spStatus conf_WriteSecret(const char *path, const char *secret)
{
    FILE *f;
    spStatus st = conf_Open(path, &f);
    if (st)
        return st;
    fputs(secret, f);
    return conf_Close(f, path);
}
