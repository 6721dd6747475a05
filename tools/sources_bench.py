#!/usr/bin/env python3
"""The 5,000-source benchmark of issue 14: a loopback server for N RSS feeds, a config that polls
each every 60 s, and the run of the release daemon under /usr/bin/time -v.

    python3 tools/sources_bench.py --sources 5000 --minutes 5 [--hosts 50] [--bin target/release/yuqing]

Each round (a minute of wall time), a tenth of the feeds (a different tenth each round) has a
new item. Prints the daemon's CPU share of one core, its peak RSS, and the intervals between
successive polls of each feed (median, p99), measured on the server side."""

import argparse
import http.server
import os
import signal
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time

POLLS = {}  # feed number -> list of monotonic request times
LOCK = threading.Lock()
START = time.monotonic()


def feed(n, now):
    minute = int((now - START) // 60)
    # Every feed has two old items; in a given round a tenth of the feeds also has a new one.
    items = [("old-%d-%d" % (n, i), "行业新闻 %d-%d" % (n, i)) for i in range(2)]
    for r in range(minute + 1):
        if n % 10 == r % 10:
            items.append(("new-%d-%d" % (n, r), "新品发布 %d 第%d轮" % (n, r)))
    body = "".join(
        "<item><guid>%s</guid><title>%s</title><description>普通的消息，和度小满无关的一天 %s</description></item>"
        % (g, t, g)
        for g, t in items
    )
    return ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>f%d</title>%s</channel></rss>'
            % (n, body)).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        now = time.monotonic()
        try:
            n = int(self.path.rsplit("/", 1)[1])
        except ValueError:
            self.send_error(404)
            return
        with LOCK:
            POLLS.setdefault(n, []).append(now)
        body = feed(n, now)
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sources", type=int, default=5000)
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--bin", default="target/release/yuqing")
    # Sites: each loopback port is one host to the per-host cap ([daemon] per_host, 2), as
    # 5,000 real sources sit on many sites. All of them on one host would be capped at two
    # requests at a time by design.
    ap.add_argument("--hosts", type=int, default=50)
    args = ap.parse_args()

    ports = []
    for _ in range(args.hosts):
        server = Server(("127.0.0.1", 0), Handler)
        ports.append(server.server_address[1])
        threading.Thread(target=server.serve_forever, daemon=True).start()

    work = tempfile.mkdtemp(prefix="yuqing-sources-bench-")
    config = os.path.join(work, "sources.toml")
    with open(config, "w") as f:
        f.write('[daemon]\ndata_dir = "%s/data"\n\n[admin]\nlisten = "127.0.0.1:0"\n\n'
                '[reports]\ndigest_at = "off"\n\n[[brands]]\nname = "度小满"\n\n' % work)
        for n in range(args.sources):
            f.write('[[sources]]\nname = "f%d"\nkind = "feed"\nurl = "http://127.0.0.1:%d/f/%d"\ninterval = "60s"\n\n'
                    % (n, ports[n % len(ports)], n))
    log = open(os.path.join(work, "daemon.log"), "w")
    timing = os.path.join(work, "time.txt")
    proc = subprocess.Popen(["/usr/bin/time", "-v", "-o", timing, args.bin, "--config", config,
                             "--log-format", "json", "run"], stdout=log, stderr=log)
    time.sleep(args.minutes * 60)
    # Stop the daemon itself (time(1) does not pass signals on), then let time(1) report.
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    for pid in children:
        os.kill(int(pid), signal.SIGTERM)
    proc.wait()

    stats = {}
    for line in open(timing):
        k, _, v = line.strip().partition(": ")
        stats[k] = v
    wall = stats["Elapsed (wall clock) time (h:mm:ss or m:ss)"]
    parts = [float(p) for p in wall.split(":")]
    wall_s = parts[-1] + 60 * parts[-2] + (3600 * parts[-3] if len(parts) == 3 else 0)
    cpu_s = float(stats["User time (seconds)"]) + float(stats["System time (seconds)"])
    gaps = []
    for times in POLLS.values():
        gaps.extend(b - a for a, b in zip(times, times[1:]))
    gaps.sort()
    polled = len(POLLS)
    print("sources %d, polled at least once %d, polls %d" % (args.sources, polled, sum(map(len, POLLS.values()))))
    print("wall %.0f s, CPU %.1f s = %.1f%% of one core (whole run, start-up included)" % (wall_s, cpu_s, 100 * cpu_s / wall_s))
    print("peak RSS %.0f MB" % (int(stats["Maximum resident set size (kbytes)"]) / 1024))
    if gaps:
        p99 = gaps[min(len(gaps) - 1, int(0.99 * len(gaps)))]
        print("poll interval: median %.1f s, p99 %.1f s, max %.1f s (%d intervals)" % (statistics.median(gaps), p99, gaps[-1], len(gaps)))
    print("work folder: %s" % work)


if __name__ == "__main__":
    sys.exit(main())
