#!/bin/bash
# First and second run of the same command with an empty compilation cache before the first
# (docs/benchmarks.md, "Start-up"): whole-process wall time, and the `done:` line.
set -u
OUT=${OUT:-$(dirname "$0")/out/startup}
rm -rf "$OUT" && mkdir -p "$OUT" && cd "$OUT"
export PGZOO_CACHE_DIR="$PWD/cache"
for cmd in "pgzoo train ppo --env CartPole-v1 --no-progress" \
           "pgzoo train ppo --env brax:halfcheetah --steps 20480 --no-progress"; do
  for attempt in first second; do
    start=$(date +%s.%N)
    $cmd --run-dir "runs/$(echo "$cmd" | tr ' :' '__')-$attempt" > out.txt 2>&1
    rc=$?
    end=$(date +%s.%N)
    echo "$cmd | $attempt | rc=$rc | $(python -c "print(round($end - $start, 1))") s | $(tail -1 out.txt)"
  done
done
du -sh cache
