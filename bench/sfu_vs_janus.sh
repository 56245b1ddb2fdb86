#!/usr/bin/env bash
# Aula's SFU vs Janus's videoroom, side by side in one run, same machine, same workload.
#
# `aula-loadtest sfu` drives both with the same synthetic str0m publisher (one 1.5 Mbit/s VP8
# screen share, 30 fps, single layer — the load tool's publisher sends no simulcast by default,
# so neither SFU gets any) and the same subscribers (4 that check every frame and measure
# latency, the rest count-only), raising N step by step; the runs alternate (Aula first in odd
# runs, Janus first in even ones) and each target gets a fresh process. Janus (Debian's `janus`
# package, GPL: a benchmark peer only, a separate process, never linked or shipped) runs from
# configuration files written to a temp dir: HTTP transport on 127.0.0.1, the videoroom plugin
# only, no STUN/TURN, host candidates on one local address, log level 3.
#
# Janus gathers no candidates on loopback interfaces, so both SFUs and all peers use the
# address of the interface of the default route (override with IP=…): traffic to a local
# address goes through the kernel's loopback device all the same.
#
# Prints each run's two tables, then per step both columns and the ratio Aula / Janus:
# subscribers per core (N / CPU cores used by the SFU process, all its threads), CPU per
# subscriber, memory per subscriber (RSS growth / N), frame latency p50 / p99, loss; and each
# target's subscribers per core at the bound (the largest step with p99 < BOUND_P99_MS and loss
# ≤ BOUND_LOSS_PCT).
#
# Usage: bench/sfu_vs_janus.sh [STEPS] [RUNS] [SECONDS]
#   defaults: 100,200,300,400 3 5
# Env: JANUS_EVENT_LOOPS (default 1: Janus's media on one thread, like Aula's one SFU thread;
#      0 = Janus's default of one thread per handle), JANUS_PORT (18088), BWE (on|off, Aula's
#      bandwidth estimation, default on), BOUND_P99_MS (50), BOUND_LOSS_PCT (0.1),
#      SKIP_BUILD=1, CARGO_TARGET_DIR.
# Needs: root or the janus package installed (apt-get install -y janus), cargo, curl.
set -euo pipefail

STEPS=${1:-100,200,300,400}
RUNS=${2:-3}
SECS=${3:-5}
JANUS_PORT=${JANUS_PORT:-18088}
JANUS_EVENT_LOOPS=${JANUS_EVENT_LOOPS:-1}
BWE=${BWE:-on}
BOUND_P99_MS=${BOUND_P99_MS:-50}
BOUND_LOSS_PCT=${BOUND_LOSS_PCT:-0.1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
IP=${IP:-$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") print $(i + 1)}')}
[ -n "$IP" ] || { echo "no local non-loopback IPv4 address found: set IP=…" >&2; exit 1; }
WORK=$(mktemp -d)

if ! command -v janus >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q janus >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q janus >/dev/null; }
  else
    echo "janus is missing: apt-get install -y janus" >&2
    exit 1
  fi
fi
JANUS_LIB=$(dirname "$(find /usr/lib /usr/local/lib /opt -name libjanus_videoroom.so -print -quit 2>/dev/null)")
[ -f "$JANUS_LIB/libjanus_videoroom.so" ] || { echo "Janus's videoroom plugin not found" >&2; exit 1; }

if [ "${SKIP_BUILD:-}" != 1 ]; then
  echo "building aula-loadtest (release)..." >&2
  (cd "$ROOT" && cargo build -q --release -p aula-bench)
fi
BIN=$CARGO_TARGET_DIR/release/aula-loadtest

JANUS_PID=
cleanup() {
  if [ -n "$JANUS_PID" ]; then kill "$JANUS_PID" 2>/dev/null || true; wait "$JANUS_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Janus's files: only the videoroom plugin and the HTTP transport are in its folders.
mkdir -p "$WORK/janus/conf" "$WORK/janus/plugins" "$WORK/janus/transports" "$WORK/janus/none"
ln -s "$JANUS_LIB/libjanus_videoroom.so" "$WORK/janus/plugins/"
ln -s "$(dirname "$JANUS_LIB")/transports/libjanus_http.so" "$WORK/janus/transports/"
LOOPS_LINE=""
[ "$JANUS_EVENT_LOOPS" != 0 ] && LOOPS_LINE="event_loops = $JANUS_EVENT_LOOPS"
cat >"$WORK/janus/conf/janus.jcfg" <<EOF
general: {
  configs_folder = "$WORK/janus/conf"
  plugins_folder = "$WORK/janus/plugins"
  transports_folder = "$WORK/janus/transports"
  events_folder = "$WORK/janus/none"
  loggers_folder = "$WORK/janus/none"
  debug_level = 3
  session_timeout = 60
  $LOOPS_LINE
}
media: {
}
nat: {
  nice_debug = false
  ice_enforce_list = "$IP"
}
plugins: {
}
transports: {
}
events: {
  broadcast = false
}
EOF
cat >"$WORK/janus/conf/janus.transport.http.jcfg" <<EOF
general: {
  json = "plain"
  base_path = "/janus"
  http = true
  port = $JANUS_PORT
  ip = "127.0.0.1"
  https = false
}
admin: {
  admin_http = false
  admin_https = false
}
EOF
printf 'general: {\n}\n' >"$WORK/janus/conf/janus.plugin.videoroom.jcfg"

JANUS_URL="http://127.0.0.1:$JANUS_PORT/janus"

start_janus() {
  janus -C "$WORK/janus/conf/janus.jcfg" -F "$WORK/janus/conf" -o >"$WORK/janus.log" 2>&1 &
  JANUS_PID=$!
  for _ in $(seq 50); do
    if curl -s -m 1 "$JANUS_URL/info" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "Janus did not start:" >&2
  tail -20 "$WORK/janus.log" >&2
  exit 1
}

stop_janus() {
  kill "$JANUS_PID" 2>/dev/null || true
  wait "$JANUS_PID" 2>/dev/null || true
  JANUS_PID=
}

# run_target aula|janus RUN: the load tool's table in $WORK/TARGET-RUN.md
run_target() {
  local target=$1 run=$2 out="$WORK/$1-$2.md"
  echo "--- run $run: $target" >&2
  if [ "$target" = janus ]; then
    start_janus
    "$BIN" sfu --target janus --janus-url "$JANUS_URL" --janus-pid "$JANUS_PID" --ip "$IP" \
      --steps "$STEPS" --seconds "$SECS" | tee "$out" || true
    stop_janus
  else
    "$BIN" sfu --ip "$IP" --bwe "$BWE" --steps "$STEPS" --seconds "$SECS" | tee "$out" || true
  fi
}

# One line per step: n cpu% per_core loss% p50 p99 rss_per_sub_kib
rows() {
  awk -F'|' '/^\| [0-9]/ {
    n = $2; sub(/\(.*/, "", n); gsub(/ /, "", n)
    split($6, l, "/"); loss = $5; gsub(/[ %]/, "", loss)
    gsub(/ /, "", l[1]); gsub(/ /, "", l[2]); gsub(/ /, "", $3); gsub(/ /, "", $4); gsub(/ /, "", $9)
    print n, $3, $4, loss, l[1], l[2], $9
  }' "$1"
}

for run in $(seq "$RUNS"); do
  if [ $((run % 2)) = 1 ]; then order="aula janus"; else order="janus aula"; fi
  for t in $order; do run_target "$t" "$run"; done
done

echo
echo "Aula ($BWE bandwidth estimation) vs Janus (event_loops ${JANUS_EVENT_LOOPS/#0/default}), $STEPS, ${SECS} s windows, media on $IP"
echo
echo "| run | subscribers | subscribers per core: Aula / Janus (ratio) | CPU per subscriber, µs/s: Aula / Janus | RSS per subscriber, KiB: Aula / Janus (ratio) | p50 / p99 ms: Aula · Janus | loss: Aula / Janus |"
echo "|---|---|---|---|---|---|---|"
for run in $(seq "$RUNS"); do
  join <(rows "$WORK/aula-$run.md" | sort -k1,1) <(rows "$WORK/janus-$run.md" | sort -k1,1) | sort -n |
    awk -v run="$run" '{
      # n a_cpu a_pc a_loss a_p50 a_p99 a_rss j_cpu j_pc j_loss j_p50 j_p99 j_rss
      printf "| %s | %s | %s / %s (%.2f) | %.0f / %.0f | %s / %s (%.2f) | %s / %s · %s / %s | %s%% / %s%% |\n",
        run, $1, $3, $9, ($9 > 0 ? $3 / $9 : 0), 1e6 / $3, 1e6 / $9, $7, $13, ($13 > 0 ? $7 / $13 : 0),
        $5, $6, $11, $12, $4, $10
    }'
done

echo
echo "Subscribers per core at the bound (largest step with p99 < $BOUND_P99_MS ms and loss ≤ $BOUND_LOSS_PCT%):"
for run in $(seq "$RUNS"); do
  at_bound() {
    rows "$WORK/$1-$run.md" | awk -v p99="$BOUND_P99_MS" -v loss="$BOUND_LOSS_PCT" \
      '$6 < p99 && $4 <= loss { n = $1; pc = $3 } END { print (n == "" ? "0 0" : n " " pc) }'
  }
  read -r an apc < <(at_bound aula)
  read -r jn jpc < <(at_bound janus)
  awk -v run="$run" -v an="$an" -v apc="$apc" -v jn="$jn" -v jpc="$jpc" 'BEGIN {
    a = (an > 0 ? apc " per core (at " an " subscribers)" : "no step within the bound")
    j = (jn > 0 ? jpc " per core (at " jn " subscribers)" : "no step within the bound")
    printf "run %s: Aula %s, Janus %s: ratio %s\n", run, a, j,
      (apc > 0 && jpc > 0 ? sprintf("%.2f", apc / jpc) : "–")
  }'
done
