/* request.c - parsing and checking the fields every step request carries. */
#include "steps/request.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/env_names.h"
#include "steps/fields.h"
#include "steps/step_util.h"
#include "steps/steps.h"

static const char *json_TypeName(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsObject(v))
        return "an object";
    return "a number";
}

static int json_IsInteger(const cJSON *v)
{
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) &&
           v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 9.0e15;
}

spStatus req_GetLong(const cJSON *o, const char *name, long lo, long hi, int required, long def,
                     long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v) {
        if (required)
            return sp_Error(SP_ERR_INVALID, "missing field \"%s\"", name);
        *out = def;
        return SP_OK;
    }
    if (!cJSON_IsNumber(v))
        return sp_Error(SP_ERR_INVALID, "\"%s\": expected an integer, got %s", name,
                        json_TypeName(v));
    if (!json_IsInteger(v))
        return sp_Error(SP_ERR_INVALID, "\"%s\": expected an integer, got %g", name,
                        v->valuedouble);
    if (v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return sp_Error(SP_ERR_INVALID, "\"%s\": %.0f is out of range [%ld, %ld]", name,
                        v->valuedouble, lo, hi);
    *out = (long)v->valuedouble;
    return SP_OK;
}

spStatus req_GetInt(const cJSON *o, const char *name, int lo, int hi, int required, int def,
                    int *out)
{
    long l;
    spStatus st = req_GetLong(o, name, lo, hi, required, def, &l);
    if (st == SP_OK)
        *out = (int)l;
    return st;
}

spStatus req_GetBool(const cJSON *o, const char *name, int def, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v) {
        *out = def;
        return SP_OK;
    }
    if (!cJSON_IsBool(v))
        return sp_Error(SP_ERR_INVALID, "\"%s\": expected true or false, got %s", name,
                        json_TypeName(v));
    *out = cJSON_IsTrue(v);
    return SP_OK;
}

spStatus req_GetNumber(const cJSON *o, const char *name, double *out, int *present)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    *present = 0;
    if (!v)
        return SP_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return sp_Error(SP_ERR_INVALID, "\"%s\": expected a finite number, got %s", name,
                        json_TypeName(v));
    *out = v->valuedouble;
    *present = 1;
    return SP_OK;
}

spStatus req_GetString(const cJSON *o, const char *name, size_t cap, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    *out = NULL;
    if (!v)
        return SP_OK;
    if (!cJSON_IsString(v))
        return sp_Error(SP_ERR_INVALID, "\"%s\": expected a string, got %s", name,
                        json_TypeName(v));
    if (strlen(v->valuestring) >= cap)
        return sp_Error(SP_ERR_INVALID, "\"%s\": longer than %zu bytes", name, cap - 1);
    *out = v->valuestring;
    return SP_OK;
}

spStatus req_GetPeerList(const cJSON *o, const char *name, int hi, int required, int **out,
                         int *n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    *out = NULL;
    *n = 0;
    if (!v && required)
        return sp_Error(SP_ERR_INVALID, "missing field \"%s\"", name);
    if (hi < 1)
        return sp_Error(SP_ERR_INVALID, "\"%s\": no peers to choose from", name);
    int k = v ? cJSON_GetArraySize(v) : hi;
    if (v && !cJSON_IsArray(v))
        return sp_Error(SP_ERR_INVALID, "\"%s\": expected an array of peer indices, got %s",
                        name, json_TypeName(v));
    if (k < 1 || k > hi)
        return sp_Error(SP_ERR_INVALID, "\"%s\": expected 1 to %d peers, got %d", name, hi, k);
    int *list = malloc(sizeof *list * (size_t)k);
    if (!list)
        return sp_Error(SP_ERR_NOMEM, "out of memory for \"%s\"", name);
    for (int i = 0; i < k; i++) {
        const cJSON *e = v ? cJSON_GetArrayItem(v, i) : NULL;
        if (e && (!json_IsInteger(e) || e->valuedouble < 0 || e->valuedouble >= hi)) {
            free(list);
            return sp_Error(SP_ERR_INVALID, "\"%s\"[%d]: expected a peer index in [0, %d)", name,
                            i, hi);
        }
        list[i] = e ? (int)e->valuedouble : i;
        for (int j = 0; j < i; j++)
            if (list[j] == list[i]) {
                int dup = list[i];
                free(list);
                return sp_Error(SP_ERR_INVALID, "\"%s\": peer %d listed twice", name, dup);
            }
    }
    *out = list;
    *n = k;
    return SP_OK;
}

/* The addresses requests once carried, and where they come from now. A
 * request naming one is refused before anything else is looked at: a
 * function that followed it would connect where the caller says and log
 * in there with its credentials. */
static spStatus refuse_Addresses(const cJSON *body)
{
    static const struct {
        const char *field, *var;
    } refused[] = {{FIELD_PEERS, ENV_REDIS_PEERS},
                   {FIELD_SHARED, ENV_REDIS_SHARED},
                   {FIELD_NATS, ENV_NATS_URL}};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (cJSON_GetObjectItemCaseSensitive(body, refused[i].field))
            return sp_Error(SP_ERR_INVALID, "\"%s\": a request names no addresses; they come "
                            "from the function's configuration (%s) and a peer is named by "
                            "its index (\"%s\")", refused[i].field, refused[i].var,
                            FIELD_PEER);
    return SP_OK;
}

/* That the configuration has the databases `need` declares, and knows the
 * caller's own (its peer index within the configured list). */
static spStatus parse_Databases(unsigned need, step_req *q)
{
    const store_addr *db;
    int n;
    spStatus st;
    if (((need & REQ_SHARED) || ((need & REQ_PEERS) && !q->per_peer)) &&
        (st = steps_SharedDb(&db)))
        return st;
    if (!q->per_peer || (!(need & REQ_PEERS) && q->peer < 0))
        return SP_OK;
    if ((st = steps_PeerDbs(&db, &n))) {
        if (need & REQ_PEERS)
            return st;
        sp_ClearError(); /* a step that needs its own answers it when it asks */
        return SP_OK;
    }
    if (q->peer >= n)
        return sp_Error(SP_ERR_INVALID, "\"%s\": %d is beyond the %d peer database(s) the "
                        "function is configured with (%s)", FIELD_PEER, q->peer, n,
                        ENV_REDIS_PEERS);
    if ((need & REQ_PEERS) && q->n_peers > n)
        return sp_Error(SP_ERR_INVALID, "the job's %d workers each need a database; the "
                        "function is configured with %d (%s)", q->n_peers, n, ENV_REDIS_PEERS);
    return SP_OK;
}

static spStatus parse_Shape(const cJSON *body, step_req *q)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, FIELD_SHAPE);
    if (!v)
        return sp_Error(SP_ERR_INVALID, "missing field \"shape\" ([c, h, w, classes] from init)");
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 4)
        return sp_Error(SP_ERR_INVALID, "\"shape\": expected [c, h, w, classes]");
    static const char *names[4] = {"c", "h", "w", "classes"};
    static const int hi[4] = {REQ_MAX_SIDE, REQ_MAX_SIDE, REQ_MAX_DIM, REQ_MAX_CLASSES};
    int s[4];
    for (int i = 0; i < 4; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, i);
        if (!json_IsInteger(e) || e->valuedouble < 1 || e->valuedouble > hi[i])
            return sp_Error(SP_ERR_INVALID, "\"shape\"[%d] (%s): expected an integer in [1, %d]",
                            i, names[i], hi[i]);
        s[i] = (int)e->valuedouble;
    }
    size_t dim = (size_t)s[0] * (size_t)s[1] * (size_t)s[2];
    if (dim > REQ_MAX_DIM)
        return sp_Error(SP_ERR_INVALID, "\"shape\": c*h*w = %zu is over %d features", dim,
                        REQ_MAX_DIM);
    q->spec = q->job.model;
    q->spec.in_c = s[0];
    q->spec.in_h = s[1];
    q->spec.in_w = s[2];
    q->spec.classes = s[3];
    q->dim = dim;
    spStatus st = model_SpecParamCount(&q->spec, &q->n_params);
    if (st)
        return sp_Wrap(st, "\"shape\" does not fit model %s", model_KindName(q->spec.kind));
    return SP_OK;
}

static spStatus parse_Common(const rt_request *r, unsigned need, step_req *q)
{
    const cJSON *body = r->body;
    if (!cJSON_IsObject(body))
        return sp_Error(SP_ERR_INVALID, "request body must be a JSON object");
    spStatus st = refuse_Addresses(body);
    if (st)
        return st;
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(body, FIELD_JOB);
    if (!job)
        return sp_Error(SP_ERR_INVALID, "missing field \"job\"");
    if ((st = job_FromJson(job, &q->job)))
        return st;
    long t;
    if ((st = req_GetLong(body, FIELD_ITERATION, 0, REQ_MAX_ITERATION, need & REQ_ITERATION, -1,
                          &t)))
        return st;
    q->iteration = t;
    if ((st = req_GetInt(body, FIELD_EPOCH, 1, REQ_MAX_EPOCH, 0, 0, &q->epoch)))
        return st;
    q->n_peers = q->job.workers;
    q->per_peer = job_PerPeerDatabases(q->job.arch);
    if ((st = req_GetInt(body, FIELD_PEER, 0, q->n_peers - 1, need & REQ_PEER, -1, &q->peer)))
        return st;
    if ((need & REQ_SHAPE) && (st = parse_Shape(body, q)))
        return st;
    if ((need & REQ_M) &&
        (st = req_GetInt(body, FIELD_M, 0, q->job.minibatches - 1, 1, 0, &q->m)))
        return st;
    return parse_Databases(need, q);
}

spStatus req_Parse(const rt_request *r, unsigned need, step_req *q)
{
    memset(q, 0, sizeof *q);
    job_Defaults(&q->job);
    q->body = r->body;
    q->iteration = -1;
    q->peer = -1;
    q->m = -1;
    return parse_Common(r, need, q);
}

spStatus req_Shared(const step_req *q, store **out)
{
    (void)q;
    const store_addr *a;
    spStatus st = steps_SharedDb(&a);
    if (st)
        return st;
    st = store_Cached(a, out);
    return st ? sp_Wrap(st, "shared redis %s:%d", a->host, a->port) : SP_OK;
}

spStatus req_PeerStore(const step_req *q, int i, store **out)
{
    if (i < 0 || i >= q->n_peers)
        return sp_Error(SP_ERR_INVALID, "peer %d: the job has %d workers", i, q->n_peers);
    if (!q->per_peer)
        return req_Shared(q, out);
    const store_addr *dbs;
    int n;
    spStatus st = steps_PeerDbs(&dbs, &n);
    if (st)
        return st;
    if (i >= n)
        return sp_Error(SP_ERR_INVALID, "peer %d is beyond the %d peer database(s) the "
                        "function is configured with (%s)", i, n, ENV_REDIS_PEERS);
    st = store_Cached(&dbs[i], out);
    return st ? sp_Wrap(st, "redis of peer %d (%s:%d)", i, dbs[i].host, dbs[i].port) : SP_OK;
}

spStatus req_OwnStore(const step_req *q, store **out)
{
    return req_PeerStore(q, q->peer, out);
}
