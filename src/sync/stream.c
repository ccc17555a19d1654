/* stream.c - the per-job JetStream stream that holds announcements. */
#include "sync/sync_internal.h"

#include <stdio.h>
#include <string.h>

#define SEC_NS 1000000000LL
/* Announcements only matter while a job runs; an hour covers any sane
 * iteration, and bounded age + discard-old keeps a forgotten job from
 * filling the disk. */
#define SYNC_STREAM_MAX_AGE_NS (3600 * SEC_NS)
#define SYNC_STREAM_MAX_BYTES (256LL * 1024 * 1024)
#define SYNC_STREAM_DEDUP_NS (120 * SEC_NS)

spStatus sync_EnsureStreamToken(sync_conn *c, const char *token)
{
    char name[SYNC_TOKEN_CAP + 8], subj[SYNC_SUBJECT_CAP];
    snprintf(name, sizeof name, "SPIRT_%s", token);
    snprintf(subj, sizeof subj, "spirt.%s.sync.>", token);
    const char *subjects[] = {subj};

    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = name;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Retention = js_LimitsPolicy;
    cfg.Discard = js_DiscardOld;
    cfg.MaxAge = SYNC_STREAM_MAX_AGE_NS;
    cfg.MaxBytes = SYNC_STREAM_MAX_BYTES;
    cfg.Duplicates = SYNC_STREAM_DEDUP_NS;
    cfg.Replicas = 1;

    jsErrCode jerr = 0;
    natsStatus s = js_AddStream(NULL, c->js, &cfg, NULL, &jerr);
    /* Same config: the server answers OK. Another process won a race, or an
     * older run made it with other limits: the stream is there, which is all
     * announcing needs. */
    if (s == NATS_OK || jerr == JSStreamNameExistErr)
        return SP_OK;
    return sync_Fail(c, s, jerr, "creating stream");
}

/* Under c->retired_mu. */
static int known_Find(const sync_conn *c, const char *token)
{
    for (int i = 0; i < c->n_known; i++)
        if (strcmp(c->known[i], token) == 0)
            return i;
    return -1;
}

spStatus sync_EnsureStreamOnce(sync_conn *c, const char *token)
{
    uint64_t epoch = sync_Reconnects(c);
    pthread_mutex_lock(&c->retired_mu);
    if (c->known_at != epoch) {
        c->n_known = 0;
        c->known_at = epoch;
    }
    int known = known_Find(c, token) >= 0;
    pthread_mutex_unlock(&c->retired_mu);
    if (known)
        return SP_OK;
    spStatus r = sync_EnsureStreamToken(c, token);
    pthread_mutex_lock(&c->retired_mu);
    if (r == SP_OK && known_Find(c, token) < 0) {
        /* Full: the oldest makes room (it is only ensured again). */
        if (c->n_known == SYNC_KNOWN_STREAMS) {
            memmove(c->known[0], c->known[1], sizeof c->known[0] * (SYNC_KNOWN_STREAMS - 1));
            c->n_known--;
        }
        snprintf(c->known[c->n_known++], SYNC_TOKEN_CAP, "%s", token);
    }
    pthread_mutex_unlock(&c->retired_mu);
    return r;
}

spStatus sync_EnsureStream(sync_conn *c, const char *job)
{
    if (!c)
        return sp_Error(SP_ERR_INVALID, "sync_EnsureStream: no connection");
    char tok[SYNC_TOKEN_CAP];
    spStatus r = sync_JobToken(job, tok, sizeof tok);
    if (r != SP_OK)
        return r;
    r = sync_EnsureStreamToken(c, tok);
    return r == SP_OK ? r : sp_Wrap(r, "stream for job '%s'", job);
}

spStatus sync_DeleteStream(sync_conn *c, const char *job)
{
    if (!c)
        return sp_Error(SP_ERR_INVALID, "sync_DeleteStream: no connection");
    char name[SYNC_TOKEN_CAP + 8];
    spStatus r = sync_StreamName(job, name, sizeof name);
    if (r != SP_OK)
        return r;
    char tok[SYNC_TOKEN_CAP];
    if (sync_JobToken(job, tok, sizeof tok) == SP_OK) {
        pthread_mutex_lock(&c->retired_mu);
        int i = known_Find(c, tok);
        if (i >= 0) {
            memmove(c->known[i], c->known[i + 1], sizeof c->known[0] * (size_t)(c->n_known - i - 1));
            c->n_known--;
        }
        pthread_mutex_unlock(&c->retired_mu);
    }
    jsErrCode jerr = 0;
    natsStatus s = js_DeleteStream(c->js, name, NULL, &jerr);
    if (s == NATS_OK || jerr == JSStreamNotFoundErr)
        return SP_OK;
    return sync_Fail(c, s, jerr, "deleting stream");
}
