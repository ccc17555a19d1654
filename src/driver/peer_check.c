/* peer_check.c - digests of the peers' final models. */
#include "driver/peer_check.h"

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
