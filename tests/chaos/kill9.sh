#!/usr/bin/env bash
# kill -9 under load (embedded default): while gen.py writes lines, each of
# the four daemons (agent, collector, indexer, queryd) is killed with SIGKILL
# several times in turn and restarted at once. Then every line must be found
# exactly once through queryd's search (cursor walk), no duplicate visible.
# make test: 60,000 lines at 1,000/s, 3 kills of each daemon (~2 min).
# LOGHAUL_LONG=1: 300,000 lines at 2,500/s, 8 kills of each.
# long-variant: yes
. "$(dirname "$0")/chaos_lib.sh"

N=60000 RATE=1000 ROUNDS=3
[ "$LONG" = 1 ] && N=300000 RATE=2500 ROUNDS=8
chaos_init kill9
chaos_configs embedded
start_all
gen_start "$N" "$RATE"
SECS=$((N / RATE))
ORDER=(agent collector indexer queryd)
KILLS=$((ROUNDS * 4))
say "writing $N lines at $RATE/s (~${SECS}s); $KILLS kills (each daemon $ROUNDS times)"
T0=$SECONDS
for k in $(seq 0 $((KILLS - 1))); do
    at=$(( (SECS - 4) * (k + 1) / (KILLS + 1) ))
    while [ $((SECONDS - T0)) -lt "$at" ]; do sleep 0.1; done
    d=${ORDER[$((k % 4))]}
    kill9 "$d"
    say "  kill -9 $d ($((k / 4 + 1)) of $ROUNDS, t=$((SECONDS - T0))s); restarting"
    "start_$d"
done
fault_end
gen_wait
chaos_check
