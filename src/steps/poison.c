/* poison.c - a Byzantine peer's contribution (poison.h). The honest
 * average is computed first, exactly as an honest peer would; the attacker
 * then overwrites it before announcing, so what the others fetch from its
 * database is the poisoned value. */
#include "steps/poison.h"

#include <stdlib.h>

#include "core/wire.h"
#include "ml/attack.h"

static int is_Attacker(const step_req *q)
{
    return attack_IsAttacker(&q->job.attack, q->peer, q->job.workers);
}

int poison_FlipsLabels(const step_req *q)
{
    return q->job.attack.kind == ATTACK_LABEL_FLIP && is_Attacker(q);
}

int poison_OnAverage(const step_req *q)
{
    return attack_OnAverage(&q->job.attack) && is_Attacker(q);
}

/* One byte of the sealed blob flipped: the checksum no longer matches. */
static spStatus poison_Corrupt(const step_req *q, store *s, const char *key)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    spStatus st = store_GetBlob(s, key, &blob, &len);
    if (st)
        return st;
    blob[attack_CorruptOffset(WIRE_HEADER_SIZE, len, q->iteration)] ^= 0x5a;
    st = store_PutBlob(s, key, blob, len, STEPS_TTL_S);
    free(blob);
    return st;
}

spStatus poison_Average(const step_req *q, store *s, const char *key, step_io *io)
{
    if (!poison_OnAverage(q))
        return SP_OK;
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    spStatus st;
    if (q->job.attack.kind == ATTACK_CORRUPT) {
        st = poison_Corrupt(q, s, key);
    } else {
        float *x = NULL;
        size_t n = 0;
        st = store_GetTensor(s, key, q->n_params, &x, &n);
        if (st == SP_OK) {
            attack_Poison(&q->job.attack, q->job.seed, q->peer, q->iteration, x, n);
            st = store_PutTensor(s, key, x, n, STEPS_TTL_S);
        }
        free(x);
    }
    io_Account(io, &snap);
    io_Add(&io->store_ms, t0);
    return st ? sp_Wrap(st, "poisoning %s (attack %s)", key,
                        attack_KindName(q->job.attack.kind))
              : SP_OK;
}
