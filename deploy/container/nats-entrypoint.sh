#!/bin/sh
# spirt-nats: entrypoint of the dev.local/spirt-nats image: nats-server with
# JetStream, its store under /data/jetstream (nats-server adds the jetstream/ part), monitoring on :8222 (/healthz).
# The configuration goes to nats-server on stdin, so credentials never appear
# in argv or on disk.
#
# Environment:
#   SPIRT_NATS_USER, SPIRT_NATS_PASSWORD  credentials clients must present;
#                                         both empty = no auth (local tests)
#   SPIRT_NATS_PASSWORD_FILE    the password from a file instead (a mounted Secret)
#   SPIRT_NATS_MAX_FILE_STORE   JetStream file store limit (default 1G)
#   SPIRT_NATS_MAX_MEM_STORE    JetStream memory store limit (default 256M)
#   SPIRT_NATS_SERVER_NAME      server name (default: the hostname)
set -eu

user=${SPIRT_NATS_USER:-}
password=${SPIRT_NATS_PASSWORD:-}
if [ -n "${SPIRT_NATS_PASSWORD_FILE:-}" ]; then
  if [ -n "$password" ]; then
    echo "spirt-nats: set SPIRT_NATS_PASSWORD or SPIRT_NATS_PASSWORD_FILE, not both" >&2
    exit 2
  fi
  password=$(cat "$SPIRT_NATS_PASSWORD_FILE") || exit 2
fi
case $user$password in
  *\"*|*\\*) echo "spirt-nats: user/password must not contain quotes or backslashes" >&2; exit 2 ;;
esac
if { [ -n "$user" ] && [ -z "$password" ]; } || { [ -z "$user" ] && [ -n "$password" ]; }; then
  echo "spirt-nats: set both SPIRT_NATS_USER and SPIRT_NATS_PASSWORD, or neither" >&2
  exit 2
fi

conf="server_name: \"${SPIRT_NATS_SERVER_NAME:-$(hostname)}\"
port: 4222
http_port: 8222
max_payload: 8MB
jetstream {
  store_dir: \"/data\"
  max_file_store: ${SPIRT_NATS_MAX_FILE_STORE:-1G}
  max_memory_store: ${SPIRT_NATS_MAX_MEM_STORE:-256M}
}"
if [ -n "$user" ]; then
  conf="$conf
authorization {
  user: \"$user\"
  password: \"$password\"
}"
fi

exec nats-server -c /dev/stdin "$@" <<CONF
$conf
CONF
