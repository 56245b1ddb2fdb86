#!/usr/bin/env bash
# Signaling benchmarks for Aula (issue 3, "Benchmarks"): memory per idle joined connection at 1k
# and 15k connections (and at several class sizes), chat fan-out latency to a class of 500,
# sustained joins per second.
#
# Usage: bench/signaling.sh            (from anywhere; builds release first)
# Env:   PORT (default 18480), IDLE_SIZES (default "1000 15000", classes of 50; "" for none),
#        IDLE_CLASS_SIZES (default "10 100 500": 1,000 connections in classes of each size; the
#        welcome grows with the class), FANOUT_MESSAGES (default 500),
#        FANOUT_RATE (default 20 msg/s), JOINS_TOTAL (default 10000), JOINS_CONCURRENCY (default 50),
#        RUST_LOG for the server (default info, as shipped), SKIP_BUILD=1 to use the binaries
#        already in target/release (e.g. while the tree does not build).
#
# Each scenario gets a fresh server process (so one scenario's allocations do not blur the next),
# started with limits raised for the test. The load tool is a separate process; both run with
# `ulimit -n 20000` (the hard limit on the reference machine). Client sockets are spread over
# several 127.0.0.x source addresses.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-18480}
KEY=bench-admin-key-0123456789
IDLE_SIZES=${IDLE_SIZES-"1000 15000"}
IDLE_CLASS_SIZES=${IDLE_CLASS_SIZES-"10 100 500"}
FANOUT_MESSAGES=${FANOUT_MESSAGES:-500}
FANOUT_RATE=${FANOUT_RATE:-20}
JOINS_TOTAL=${JOINS_TOTAL:-10000}
JOINS_CONCURRENCY=${JOINS_CONCURRENCY:-50}
SOURCES=127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4
TARGET_DIR=${CARGO_TARGET_DIR:-target}

ulimit -n 20000

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    echo "== building (release)"
    cargo build --release -p aula -p aula-bench
fi
AULA="$TARGET_DIR/release/aula"
LOADTEST="$TARGET_DIR/release/aula-loadtest"

WORK=$(mktemp -d /tmp/aula-bench.XXXXXX)
SERVER_PID=""

stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
trap 'stop_server; rm -rf "$WORK"' EXIT

# start_server NAME: a fresh data dir and log per scenario; waits for the "Listening:" line.
start_server() {
    local name=$1
    mkdir -p "$WORK/$name"
    AULA_LIMITS__MAX_CLASS_SIZE=20000 \
    AULA_LIMITS__MESSAGES_PER_SEC=100000 \
    AULA_LIMITS__BURST=100000 \
    AULA_LIMITS__CHAT_PER_SEC=100000 \
    AULA_LIMITS__CHAT_BURST=100000 \
    AULA_LIMITS__IDLE_TIMEOUT_SECS=600 \
    AULA_JOINING__JOIN_BURST_PER_IP=100000 \
    AULA_JOINING__JOINS_PER_IP_PER_SEC=100000 \
    AULA_HTTP__MAX_CONNECTIONS_PER_IP=20000 \
    AULA_HTTP__MAX_CONNECTIONS=20000 \
    RUST_LOG=${RUST_LOG:-info} \
        "$AULA" serve --no-turn --no-sfu --listen "127.0.0.1:$PORT" --admin-key "$KEY" --data-dir "$WORK/$name/data" \
        >"$WORK/$name/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        if grep -q "Listening: http://" "$WORK/$name/server.log"; then
            return 0
        fi
        sleep 0.1
    done
    echo "server did not start:" >&2
    cat "$WORK/$name/server.log" >&2
    exit 1
}

SERVER=http://127.0.0.1:$PORT
echo "== machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), open files $(ulimit -n)"

for n in $IDLE_SIZES; do
    start_server "idle-$n"
    "$LOADTEST" idle --server "$SERVER" --admin-key "$KEY" --connections "$n" \
        --sources "$SOURCES" --server-pid "$SERVER_PID"
    stop_server
done

for size in $IDLE_CLASS_SIZES; do
    start_server "idle-class-$size"
    "$LOADTEST" idle --server "$SERVER" --admin-key "$KEY" --connections 1000 \
        --class-size "$size" --sources "$SOURCES" --server-pid "$SERVER_PID"
    stop_server
done

if [[ "$FANOUT_MESSAGES" != 0 ]]; then
start_server fanout
"$LOADTEST" fanout --server "$SERVER" --admin-key "$KEY" --class-size 500 \
    --messages "$FANOUT_MESSAGES" --rate "$FANOUT_RATE" --sources "$SOURCES"
stop_server
fi

if [[ "$JOINS_TOTAL" != 0 ]]; then
start_server joins
"$LOADTEST" joins --server "$SERVER" --admin-key "$KEY" --total "$JOINS_TOTAL" \
    --concurrency "$JOINS_CONCURRENCY" --sources "$SOURCES"
stop_server
fi

echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
