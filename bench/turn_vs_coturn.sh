#!/usr/bin/env bash
# Aula's TURN relay vs coturn, side by side in one run, same machine, same load.
#
# Starts coturn (`turnserver`, TURN REST secret, loopback, no TLS/DTLS) and Aula's TURN
# (`aula relay`, release build) on two ports, runs the same coturn
# `turnutils_uclient` client-to-client load against each (UDP, then TCP with -t) and prints
# messages/s, Mbit/s, loss, server CPU seconds (utime+stime from /proc/PID/stat) and resident
# memory per allocation (peak RSS growth / relay sockets in use).
#
# Usage: bench/turn_vs_coturn.sh [CLIENTS] [MESSAGES] [BYTES] [INTERVAL_MS]
#   defaults: 50 1000 1000 20   (uclient -m 50 -n 1000 -l 1000 -z 20)
# Env: AULA_THREADS=N runs Aula's runtime with N worker threads (tokio's TOKIO_WORKER_THREADS);
#      default: tokio's multi-threaded runtime with one worker per core.
#      AULA_BIN=PATH runs that `aula` binary instead of building one (e.g. a copy of an earlier
#      build, to alternate before/after runs).
# Needs: root or the coturn package installed (apt-get install -y coturn), cargo.
set -euo pipefail

CLIENTS=${1:-50}
MSGS=${2:-1000}
BYTES=${3:-1000}
INTERVAL=${4:-20}
SECRET=bench-secret
COTURN_PORT=${COTURN_PORT:-23478}
AULA_PORT=${AULA_PORT:-33478}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d)
HZ=$(getconf CLK_TCK)

if ! command -v turnutils_uclient >/dev/null || ! command -v turnserver >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q coturn >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q coturn >/dev/null; }
  else
    echo "coturn is missing: apt-get install -y coturn" >&2
    exit 1
  fi
fi

if [ -z "${AULA_BIN:-}" ]; then
  echo "building aula (release)..." >&2
  (cd "$ROOT" && cargo build -q --release --bin aula)
  AULA_BIN=$CARGO_TARGET_DIR/release/aula
fi

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

turnserver -n --no-cli --no-tls --no-dtls --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 \
  --listening-port="$COTURN_PORT" --use-auth-secret --static-auth-secret="$SECRET" \
  --realm=aula --allow-loopback-peers --allowed-peer-ip=127.0.0.1 --min-port=40000 --max-port=44999 \
  --no-stdout-log --log-file="$WORK/coturn.log" --simple-log >/dev/null 2>&1 &
COTURN_PID=$!
PIDS+=("$COTURN_PID")

# Aula with its secure defaults except the loopback allow rule (uclient's peers are on
# 127.0.0.1), a per-user quota large enough for one user name running every session, and a
# credential lifetime of a day (uclient -W mints credentials that expire in 24 hours).
env AULA_TURN__MAX_ALLOCATIONS_PER_USER=100000 AULA_TURN__MAX_CREDENTIAL_LIFETIME_SECS=86400 \
  ${AULA_THREADS:+TOKIO_WORKER_THREADS="$AULA_THREADS"} \
  "$AULA_BIN" relay --data-dir "$WORK/aula-data" --turn-listen 127.0.0.1:"$AULA_PORT" \
  --turn-secret "$SECRET" --turn-allow-peer 127.0.0.0/8 >"$WORK/aula.log" 2>&1 &
AULA_PID=$!
PIDS+=("$AULA_PID")
sleep 1
kill -0 "$COTURN_PID" || { echo "coturn did not start" >&2; cat "$WORK/coturn.log" >&2; exit 1; }
kill -0 "$AULA_PID" || { echo "aula did not start" >&2; cat "$WORK/aula.log" >&2; exit 1; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
udp_sockets() { ss -uanp 2>/dev/null | grep -c "pid=$1," || true; }

# run NAME PID PORT TRANSPORT_FLAG
run() {
  local name=$1 pid=$2 port=$3 flag=$4
  local cpu0 rss0 socks0 peak_rss=0 peak_socks=0 t0 t1
  cpu0=$(cpu_ticks "$pid"); rss0=$(rss_kb "$pid"); socks0=$(udp_sockets "$pid")
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086
  turnutils_uclient -y $flag -W "$SECRET" -u bench -p "$port" -m "$CLIENTS" -n "$MSGS" \
    -l "$BYTES" -z "$INTERVAL" 127.0.0.1 >"$WORK/$name.out" 2>&1 &
  local up=$!
  while kill -0 "$up" 2>/dev/null; do
    local r s
    r=$(rss_kb "$pid"); s=$(udp_sockets "$pid")
    [ "$r" -gt "$peak_rss" ] && peak_rss=$r
    [ "$s" -gt "$peak_socks" ] && peak_socks=$s
    sleep 0.5
  done
  wait "$up" || true
  t1=$(date +%s.%N)
  local cpu1; cpu1=$(cpu_ticks "$pid")
  local tally lost
  tally=$(grep 'start_mclient: tot_send_msgs=' "$WORK/$name.out" | tail -1 | sed 's/.*tot_send_msgs=//')
  lost=$(grep 'Total lost packets' "$WORK/$name.out" | tail -1 | sed 's/.*Total lost packets //; s/, total send dropped.*//')
  local sent=${tally%%,*} recv=${tally##*=}
  awk -v name="$name" -v sent="$sent" -v recv="$recv" -v bytes="$BYTES" -v t0="$t0" -v t1="$t1" \
      -v cpu="$((cpu1 - cpu0))" -v hz="$HZ" -v rss0="$rss0" -v peak="$peak_rss" \
      -v allocs="$((peak_socks - socks0))" -v lost="$lost" 'BEGIN {
    secs = t1 - t0; cpus = cpu / hz
    rel = recv * 2  # each message crosses the server twice (client->relay->relay->client)
    printf "%-12s msgs=%d/%d  %8.0f msg/s  %7.2f Mbit/s  loss %-18s  server CPU %6.2f s  %6.2f us/relayed pkt  allocations %4d  RSS +%6.0f KiB (%5.1f KiB/alloc)\n",
      name, recv, sent, recv / secs, recv * bytes * 8 / secs / 1e6, lost, cpus,
      (rel > 0 ? cpus * 1e6 / rel : 0), allocs, peak - rss0, (allocs > 0 ? (peak - rss0) / allocs : 0)
  }'
}

echo "load: turnutils_uclient -y [-t] -W SECRET -u bench -m $CLIENTS -n $MSGS -l $BYTES -z $INTERVAL 127.0.0.1"
echo "coturn $(turnserver --version 2>/dev/null | head -1 || true) (pid $COTURN_PID), aula (pid $AULA_PID)"
run coturn-udp "$COTURN_PID" "$COTURN_PORT" ""
run aula-udp "$AULA_PID" "$AULA_PORT" ""
run coturn-tcp "$COTURN_PID" "$COTURN_PORT" "-t"
run aula-tcp "$AULA_PID" "$AULA_PORT" "-t"
