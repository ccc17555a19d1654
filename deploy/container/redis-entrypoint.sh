#!/bin/sh
# spirt-redis: entrypoint of the dev.local/spirt-redis image.
#
#   spirt-redis [redis-server options...]   run the server (PID 1)
#   spirt-redis ping                        liveness/readiness check (exit 0 on PONG)
#
# The configuration is generated here and handed to redis-server on stdin
# (`redis-server -`), so the password never appears in argv or on disk.
#
# Environment:
#   SPIRT_REDIS_PASSWORD / SPIRT_REDIS_PASSWORD_FILE  password; empty = no auth
#                                   (then protected mode is off: only for
#                                   private networks and local tests)
#   SPIRT_REDIS_USER      ACL user the clients log in as (default "default";
#                         any other name gets all permissions and the
#                         default user is switched off)
#   SPIRT_REDIS_PORT      listening port (default 6379)
#   SPIRT_REDIS_AOF       appendonly yes|no (default yes)
#   SPIRT_REDIS_APPENDFSYNC  always|everysec|no (default everysec); always:
#                         every acknowledged write is on disk before the
#                         reply, so a killed server restarts with all of them
#   SPIRT_REDIS_MAXMEMORY e.g. 512mb (default: no limit)
#   SPIRT_REDIS_MODULE    module path (default /usr/lib/spirt/spirt_redis.so;
#                         "none" loads no module)
set -eu

password=${SPIRT_REDIS_PASSWORD:-}
if [ -n "${SPIRT_REDIS_PASSWORD_FILE:-}" ]; then
  password=$(cat "$SPIRT_REDIS_PASSWORD_FILE")
fi
user=${SPIRT_REDIS_USER:-default}
port=${SPIRT_REDIS_PORT:-6379}

if [ "${1:-}" = ping ]; then
  set -- redis-cli --no-auth-warning -h 127.0.0.1 -p "$port"
  if [ -n "$password" ]; then
    export REDISCLI_AUTH="$password"
    if [ "$user" != default ]; then set -- "$@" --user "$user"; fi
  fi
  [ "$("$@" ping 2>&1)" = PONG ]
  exit
fi

# Config values are written inside double quotes: refuse characters that
# would end or escape them rather than produce a surprising config.
case $password$user in
  *\"*|*\\*|*' '*) echo "spirt-redis: password/user must not contain quotes, backslashes or spaces" >&2; exit 2 ;;
esac

fsync=${SPIRT_REDIS_APPENDFSYNC:-everysec}
case $fsync in
  always|everysec|no) ;;
  *) echo "spirt-redis: SPIRT_REDIS_APPENDFSYNC=$fsync: expected always, everysec or no" >&2; exit 2 ;;
esac

module=${SPIRT_REDIS_MODULE:-/usr/lib/spirt/spirt_redis.so}
conf="port $port
bind * -::*
dir /data
appendonly ${SPIRT_REDIS_AOF:-yes}
appendfsync $fsync
save \"\""
if [ -n "${SPIRT_REDIS_MAXMEMORY:-}" ]; then
  conf="$conf
maxmemory $SPIRT_REDIS_MAXMEMORY"
fi
if [ "$module" != none ]; then
  if [ -f "$module" ]; then
    conf="$conf
loadmodule $module"
  else
    echo "spirt-redis: warning: module $module not found; starting without it" >&2
  fi
fi
if [ -z "$password" ]; then
  conf="$conf
protected-mode no"
elif [ "$user" = default ]; then
  conf="$conf
requirepass \"$password\""
else
  conf="$conf
user default off
user \"$user\" on \">$password\" ~* &* +@all"
fi

exec redis-server - "$@" <<CONF
$conf
CONF
