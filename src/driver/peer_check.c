/* peer_check.c - digests of the peers' final models. */
#include "driver/peer_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"

static spStatus model_Digest(store *s, const char *job, int p, uint32_t *crc, long *applied)
{
    char kp[160], ka[160];
    uint8_t *buf = NULL;
    size_t len = 0;
    spStatus st;
    if ((st = store_Key(kp, sizeof kp, job, "params:%d", p)) ||
        (st = store_Key(ka, sizeof ka, job, "applied:%d", p)) ||
        (st = store_GetBlob(s, kp, &buf, &len)))
        return st;
    *crc = crc32c(0, buf, len);
    free(buf);
    buf = NULL;
    *applied = -1;
    st = store_GetBlob(s, ka, &buf, &len);
    if (st == SP_ERR_NOT_FOUND) {
        sp_ClearError();
        return SP_OK;
    }
    if (st)
        return st;
    char text[32];
    if (len < sizeof text) {
        memcpy(text, buf, len);
        text[len] = 0;
        *applied = strtol(text, NULL, 10);
    }
    free(buf);
    return SP_OK;
}

cJSON *peercheck_Models(const store_addr *peers, const int *which, int n, const char *job,
                        int *agree)
{
    cJSON *out = cJSON_CreateArray();
    uint32_t first = 0;
    *agree = n > 0;
    for (int i = 0; i < n; i++) {
        int p = which[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "peer", p);
        store *s = NULL;
        uint32_t crc = 0;
        long applied = -1;
        spStatus st = store_Connect(&peers[p], &s);
        if (st == SP_OK)
            st = model_Digest(s, job, p, &crc, &applied);
        store_Destroy(s);
        if (st) {
            cJSON_AddStringToObject(o, "error", sp_LastError());
            sp_ClearError();
            *agree = 0;
        } else {
            char hex[16];
            snprintf(hex, sizeof hex, "%08x", crc);
            cJSON_AddNumberToObject(o, "applied", (double)applied);
            cJSON_AddStringToObject(o, "crc32c", hex);
            if (i == 0)
                first = crc;
            else if (crc != first)
                *agree = 0;
        }
        cJSON_AddItemToArray(out, o);
    }
    return out;
}

static const char *crc_Of(const cJSON *m)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "crc32c");
    return cJSON_IsString(c) ? c->valuestring : NULL;
}

static int peer_Of(const cJSON *m)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(m, "peer");
    return cJSON_IsNumber(p) ? (int)p->valuedouble : -1;
}

/* Appends to msg at *len, keeping it NUL-terminated and within cap. */
static void put(char *msg, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *msg, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg + *len, cap - *len, fmt, ap);
    va_end(ap);
    *len = n < 0 ? cap : *len + (size_t)n > cap ? cap : *len + (size_t)n;
}

int peercheck_Differ(const cJSON *models, char *msg, size_t cap)
{
    const char *best = NULL;
    int best_n = 0, all = 0, off = 0;
    msg[0] = 0;
    for (const cJSON *m = models ? models->child : NULL; m; m = m->next) {
        const char *c = crc_Of(m);
        int n = 0;
        all++;
        for (const cJSON *k = models->child; c && k; k = k->next)
            n += crc_Of(k) && strcmp(crc_Of(k), c) == 0;
        if (n > best_n) /* peers come in order: the first of a tie is the lowest */
            best = c, best_n = n;
    }
    off = all - best_n;
    if (off == 0)
        return 0;
    size_t len = 0;
    put(msg, cap, &len, "peer%s", off > 1 ? "s" : "");
    int i = 0;
    for (const cJSON *m = models->child; m; m = m->next) {
        const char *c = crc_Of(m);
        if (c && best && strcmp(c, best) == 0)
            continue;
        put(msg, cap, &len, "%s %d ", i++ ? "," : "", peer_Of(m));
        if (c) {
            put(msg, cap, &len, "(model %s)", c);
        } else {
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(m, "error");
            put(msg, cap, &len, "(model unreadable: %.200s)", cJSON_IsString(e) ? e->valuestring : "?");
        }
    }
    if (!best)
        put(msg, cap, &len, ": no model to compare");
    if (best) {
        put(msg, cap, &len, " differ%s from the model %s of peer%s", off > 1 ? "" : "s", best,
            best_n > 1 ? "s" : "");
        i = 0;
        for (const cJSON *m = models->child; m; m = m->next)
            if (crc_Of(m) && strcmp(crc_Of(m), best) == 0)
                put(msg, cap, &len, "%s %d", i++ ? "," : "", peer_Of(m));
    }
    return 1;
}
