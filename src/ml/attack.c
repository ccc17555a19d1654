/* attack.c - the Byzantine behaviours of attack.h. */
#include "ml/attack.h"
#include "core/names.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

/* Stream id of the Gaussian attack's rng ("gauss"), kept apart from the
 * streams that initialise and shuffle. */
#define ATTACK_STREAM 0x6761757373ULL

void attack_Defaults(attack_config *c)
{
    memset(c, 0, sizeof *c);
    c->kind = ATTACK_NONE;
    c->scale = 4.0f;
    c->sigma = 1.0f;
}

static const sp_name attack_names[] = {
    {ATTACK_NONE, "none"},         {ATTACK_SIGN_FLIP, "sign-flip"},
    {ATTACK_GAUSSIAN, "gaussian"}, {ATTACK_LABEL_FLIP, "label-flip"},
    {ATTACK_CORRUPT, "corrupt"},
};

spStatus attack_ParseKind(const char *name, attack_kind *out)
{
    int v;
    if (names_Find(attack_names, NAMES_COUNT(attack_names), name, 0, &v)) {
        *out = (attack_kind)v;
        return SP_OK;
    }
    return sp_Error(SP_ERR_INVALID,
                    "unknown attack \"%s\" (expected none, sign-flip, gaussian, label-flip or "
                    "corrupt)",
                    name ? name : "(null)");
}

const char *attack_KindName(attack_kind k)
{
    return names_Of(attack_names, NAMES_COUNT(attack_names), k);
}

spStatus attack_ParseList(const char *list, attack_config *c)
{
    int n = 0;
    const char *p = list;
    if (!p || !*p)
        return sp_Error(SP_ERR_INVALID, "expected peer indices like 0,3");
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 0 || v > 255 || (*end && *end != ','))
            return sp_Error(SP_ERR_INVALID, "'%s' is not a list of peer indices like 0,3",
                            list);
        for (int i = 0; i < n; i++)
            if (c->listed[i] == v)
                return sp_Error(SP_ERR_INVALID, "peer %ld is listed twice", v);
        if (n == ATTACK_MAX_LISTED)
            return sp_Error(SP_ERR_INVALID, "at most %d attackers", ATTACK_MAX_LISTED);
        c->listed[n++] = (int)v;
        if (!*end)
            break;
        p = end + 1;
    }
    c->n_listed = n;
    return SP_OK;
}

spStatus attack_Validate(const attack_config *c, int workers)
{
    int chosen = c->n_listed > 0 || c->count > 0;
    if (c->kind == ATTACK_NONE) {
        if (chosen)
            return sp_Error(SP_ERR_INVALID, "--attackers/--attackers-count need --attack");
        return SP_OK;
    }
    if (!chosen)
        return sp_Error(SP_ERR_INVALID, "--attack %s: choose the peers with --attackers LIST "
                        "or --attackers-count F", attack_KindName(c->kind));
    if (c->n_listed > 0 && c->count > 0)
        return sp_Error(SP_ERR_INVALID, "give --attackers or --attackers-count, not both");
    for (int i = 0; i < c->n_listed; i++)
        if (c->listed[i] < 0 || c->listed[i] >= workers)
            return sp_Error(SP_ERR_INVALID, "--attackers: peer %d does not exist with %d workers",
                            c->listed[i], workers);
    int f = c->n_listed > 0 ? c->n_listed : c->count;
    if (f >= workers)
        return sp_Error(SP_ERR_INVALID, "%d attacker(s) among %d workers leave no honest peer",
                        f, workers);
    if (!(c->scale > 0) || !isfinite(c->scale))
        return sp_Error(SP_ERR_INVALID, "--attack-scale %g: must be a positive number", c->scale);
    if (!(c->sigma > 0) || !isfinite(c->sigma))
        return sp_Error(SP_ERR_INVALID, "--attack-sigma %g: must be a positive number", c->sigma);
    return SP_OK;
}

int attack_IsAttacker(const attack_config *c, int peer, int workers)
{
    if (c->kind == ATTACK_NONE || peer < 0)
        return 0;
    if (c->n_listed > 0) {
        for (int i = 0; i < c->n_listed; i++)
            if (c->listed[i] == peer)
                return 1;
        return 0;
    }
    return c->count > 0 && peer >= workers - c->count && peer < workers;
}

int attack_OnAverage(const attack_config *c)
{
    return c->kind == ATTACK_SIGN_FLIP || c->kind == ATTACK_GAUSSIAN ||
           c->kind == ATTACK_CORRUPT;
}

void attack_Poison(const attack_config *c, uint64_t seed, int peer, long iteration, float *x,
                   size_t n)
{
    if (c->kind == ATTACK_SIGN_FLIP) {
        float k = -c->scale;
        for (size_t i = 0; i < n; i++)
            x[i] *= k;
    } else if (c->kind == ATTACK_GAUSSIAN) {
        rng r;
        /* One stream per (peer, iteration): a retry draws the same noise. */
        rng_Seed(&r, seed ^ ((uint64_t)(unsigned)peer << 48),
                 ATTACK_STREAM + (uint64_t)iteration * 0x10001ULL);
        for (size_t i = 0; i < n; i++)
            x[i] = c->sigma * rng_Normal(&r);
    }
}

void attack_FlipLabels(int classes, int32_t *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = classes - 1 - y[i];
}

size_t attack_CorruptOffset(size_t header, size_t len, long iteration)
{
    if (len <= header)
        return len ? len - 1 : 0;
    return header + (size_t)((unsigned long)iteration * 2654435761UL % (len - header));
}
