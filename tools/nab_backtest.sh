#!/bin/sh
# Run from the repository root. Runs `yuqing backtest` over the four NAB realTweets series with the shipped defaults and scores
# the alarms. Usage: ./nab_backtest.sh [extra backtest flags, e.g. --tail poisson]
# The data stays in ../shared/data/nab_tweets; nothing of it is committed.
set -e
D=${D:-../shared/data/nab_tweets}
BIN=${BIN:-target/release/yuqing}
OUT=${OUT:-/tmp/yuqing-nab-alarms.jsonl}
: > "$OUT"
for f in "$D"/Twitter_volume_*.csv; do
    name=$(basename "$f" .csv)
    "$BIN" backtest "$f" --bin 5m --series "$name" "$@" >> "$OUT"
done
python3 ../shared/tools/nab_score.py "$OUT"
