#!/usr/bin/env python3
"""Lists each scored alarm of a NAB backtest with what might tell labelled bursts from false ones.

Usage (from the repository root, after tools/nab_backtest.sh):
  python3 tools/nab_alarm_features.py /tmp/yuqing-nab-alarms.jsonl

One line per alarm after the scorer's 15% warm-up: series, time, whether it falls in a labelled
window (HIT) or not (FA), window, count, expected, ratio, p, and the excess (count - expected) as
a share of the series' mean daily volume over the week before the alarm.
"""
import csv, json, os, sys
from datetime import datetime, timedelta

DATA = os.environ.get("D", os.path.join("..", "shared", "data", "nab_tweets"))


def parse(s):
    return datetime.strptime(s[:19], "%Y-%m-%d %H:%M:%S")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    windows = json.load(open(os.path.join(DATA, "windows.json")))
    series = {}
    for line in open(sys.argv[1]):
        if not line.strip():
            continue
        alarm = json.loads(line)
        name, at = alarm["series"], parse(alarm["at"])
        if name not in series:
            path = os.path.join(DATA, name + ".csv")
            series[name] = [(parse(r["timestamp"]), float(r["value"])) for r in csv.DictReader(open(path))]
        rows = series[name]
        if at < rows[int(0.15 * len(rows))][0]:
            continue
        labelled = [(parse(a), parse(b)) for a, b in windows["realTweets/" + name + ".csv"]]
        kind = "HIT" if any(a <= at <= b for a, b in labelled) else "FA "
        week = [v for t, v in rows if at - timedelta(days=7) <= t < at]
        step = (rows[1][0] - rows[0][0]).total_seconds()
        daily = sum(week) / len(week) * 86400 / step
        excess = alarm["count"] - alarm["expected"]
        print(
            f"{name} {alarm['at']} {kind} window={alarm['window']} count={alarm['count']:.0f}"
            f" expected={alarm['expected']:.1f} ratio={alarm['count'] / max(alarm['expected'], 1e-9):.1f}"
            f" p={alarm['p']:.1e} share_of_day={excess / daily:.3f}"
        )


if __name__ == "__main__":
    main()
