/* api.c - binds the module API table through the server's GetApi. */
#include <string.h>

#include "redismodule_api.h"

MOD_LOCAL rm_api RM;

/* GetApi writes a function pointer through a void*; the casts below are the
 * documented way the server hands out its entry points. */
#define BIND(field)                                                   \
    do {                                                              \
        if (RM.GetApi("RedisModule_" #field, (void *)&RM.field) != 0) \
            return REDISMODULE_ERR;                                   \
    } while (0)

int rm_Bind(RedisModuleCtx *ctx, const char *name, int ver)
{
    /* The server places GetApi in the context's first pointer-sized field. */
    void *getapi;
    memcpy(&getapi, ctx, sizeof getapi);
    if (!getapi)
        return REDISMODULE_ERR;
    /* Object-to-function pointer conversion via memcpy keeps -Wpedantic quiet. */
    memcpy(&RM.GetApi, &getapi, sizeof getapi);

    BIND(CreateCommand);
    BIND(SetModuleAttribs);
    BIND(WrongArity);
    BIND(ReplyWithError);
    BIND(ReplyWithLongLong);
    BIND(ReplyWithSimpleString);
    BIND(ReplyWithStringBuffer);
    BIND(OpenKey);
    BIND(CloseKey);
    BIND(KeyType);
    BIND(StringDMA);
    BIND(StringTruncate);
    BIND(DeleteKey);
    BIND(SetExpire);
    BIND(StringPtrLen);
    BIND(StringToLongLong);
    BIND(StringToDouble);
    BIND(ReplicateVerbatim);
    BIND(IsKeysPositionRequest);
    BIND(KeyAtPos);
    BIND(Alloc);
    BIND(Free);
    /* Optional on very old servers; when present it guards the name. */
    if (RM.GetApi("RedisModule_IsModuleNameBusy", (void *)&RM.IsModuleNameBusy) != 0)
        RM.IsModuleNameBusy = NULL;
    if (RM.IsModuleNameBusy && RM.IsModuleNameBusy(name))
        return REDISMODULE_ERR;
    RM.SetModuleAttribs(ctx, name, ver, REDISMODULE_APIVER_1);
    return REDISMODULE_OK;
}
