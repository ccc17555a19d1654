/* applied.c - reading and writing a peer's applied-iteration marker. */
#include "steps/applied.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

spStatus applied_Read(store *s, const step_req *q, int peer, long *last)
{
    char key[160];
    uint8_t *buf = NULL;
    size_t len = 0;
    *last = -1;
    spStatus st = req_Key(q, key, "applied:%d", peer);
    if (st)
        return st;
    st = store_GetBlob(s, key, &buf, &len);
    if (st == SP_ERR_NOT_FOUND) {
        sp_ClearError();
        return SP_OK;
    }
    if (st)
        return sp_Wrap(st, "%s", key);
    char text[32];
    int ok = len > 0 && len < sizeof text;
    if (ok) {
        memcpy(text, buf, len);
        text[len] = 0;
        char *end;
        *last = strtol(text, &end, 10);
        ok = *end == 0 && *last >= 0;
    }
    free(buf);
    if (!ok)
        *last = -1;
    return ok ? SP_OK : sp_Error(SP_ERR_FORMAT, "%s does not hold an iteration number", key);
}

spStatus applied_Write(store *s, const step_req *q, int peer, long t)
{
    char key[160], text[32];
    spStatus st = req_Key(q, key, "applied:%d", peer);
    if (st)
        return st;
    if (t < 0)
        return store_Delete(s, key);
    snprintf(text, sizeof text, "%ld", t);
    return store_PutBlob(s, key, text, strlen(text), 0);
}
