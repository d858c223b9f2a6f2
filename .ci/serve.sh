# Sourced by the CI steps that need a running release server.
# start_server NAME DATABASE_URL [VAR=VALUE ...] [LAUNCHER [ARG ...]]: starts
# target/release/postapi on a free port with the given settings, waits for it
# to serve, and sets SERVER_URL and SERVER_PID; its log goes to
# $CI_WORK/NAME.log. A launcher after the settings is run with the binary's
# path as its last argument, and must exec it (SERVER_PID is the server's).
# POSTAPI_BIN names another copy of the binary (by default the release build
# under $CARGO_TARGET_DIR, or target/).

start_server() {
    local name=$1 database_url=$2
    shift 2
    local log="$CI_WORK/$name.log"
    # Created here, not by the background job's redirection, so the wait
    # below never reads a file that is not there yet (under set -e and
    # pipefail that failed the caller).
    : >"$log"
    env DATABASE_URL="$database_url" PORT=0 RUST_LOG=info "$@" "${POSTAPI_BIN:-${CARGO_TARGET_DIR:-target}/release/postapi}" >"$log" 2>&1 &
    SERVER_PID=$!
    local port=""
    for _ in $(seq 100); do
        port=$(sed -n 's|.*on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$log" | head -n 1)
        [ -n "$port" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "postapi ($name) did not start:" >&2
        cat "$log" >&2
        return 1
    fi
    SERVER_URL="http://127.0.0.1:$port"
    echo "postapi ($name) serving at $SERVER_URL"
}

stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

# A PostgreSQL database for one CI step, dropped at exit by drop_databases.
# Named after this script's process ($$ is the same in the $(...) subshells
# callers use), so drop_databases finds every one without being told.
create_database() {
    local name="postapi_ci_$1_$$"
    psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE $name" >/dev/null
    echo "${PG_ADMIN_URL%/*}/$name"
}

drop_databases() {
    local name
    for name in $(psql -Atq "$PG_ADMIN_URL" \
        -c "SELECT datname FROM pg_database WHERE datname ~ '^postapi_ci_[a-z]+_$$\$'" 2>/dev/null); do
        psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
    done
}
