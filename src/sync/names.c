/* names.c - job, topic and subject naming for sync (rules in sync.h). */
#include "sync/sync_internal.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

long long sync_NowMs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int is_plain(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-';
}

/* '_' is the escape byte, so it is itself escaped ("__"); every other byte
 * outside [A-Za-z0-9-] becomes "_XX". Each byte maps to a code no other code
 * is a prefix of, which makes the whole mapping one-to-one: two job ids can
 * never land in the same stream. */
spStatus sync_JobToken(const char *job, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!job || !job[0])
        return sp_Error(SP_ERR_INVALID, "sync: job id is empty");
    size_t len = strlen(job);
    if (len > SYNC_JOB_MAX)
        return sp_Error(SP_ERR_INVALID, "sync: job id is %zu bytes, at most %d allowed", len,
                        SYNC_JOB_MAX);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)job[i];
        if (o + 4 > cap)
            return sp_Error(SP_ERR_INVALID, "sync: job id '%s' too long for its buffer", job);
        if (is_plain(ch)) {
            out[o++] = (char)ch;
        } else if (ch == '_') {
            out[o++] = '_';
            out[o++] = '_';
        } else {
            out[o++] = '_';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
    return SP_OK;
}

spStatus sync_CheckTopic(const char *topic)
{
    if (!topic || !topic[0])
        return sp_Error(SP_ERR_INVALID, "sync: topic is empty");
    size_t len = strlen(topic);
    if (len > SYNC_TOPIC_MAX)
        return sp_Error(SP_ERR_INVALID, "sync: topic is %zu bytes, at most %d allowed", len,
                        SYNC_TOPIC_MAX);
    for (size_t i = 0; i < len; i++)
        if (!is_plain((unsigned char)topic[i]) && topic[i] != '_')
            return sp_Error(SP_ERR_INVALID,
                            "sync: topic '%s' has a character outside [A-Za-z0-9_-]", topic);
    return SP_OK;
}

spStatus sync_StreamName(const char *job, char *out, size_t cap)
{
    char tok[SYNC_TOKEN_CAP];
    spStatus s = sync_JobToken(job, tok, sizeof tok);
    if (s != SP_OK)
        return s;
    if ((size_t)snprintf(out, cap, "SPIRT_%s", tok) >= cap)
        return sp_Error(SP_ERR_INVALID, "sync: stream name for job '%s' too long", job);
    return SP_OK;
}

int sync_SubjectMember(const char *subject)
{
    const char *dot = subject ? strrchr(subject, '.') : NULL;
    const char *p = dot ? dot + 1 : subject;
    if (!p || !*p)
        return -1;
    long v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
        if (v > INT_MAX)
            return -1;
    }
    return (int)v;
}
