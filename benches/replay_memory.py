#!/usr/bin/env python3
"""Memory of the connection state recovery log (docs/benchmarks.md).

Usage: replay_memory.py PATH_TO_SIO_RELAY true|false

Starts the relay on 127.0.0.1:29100/29101 with [recovery] enabled (or not), pushes 5,000
events to warm up, then 100,000 to rooms nobody is in, and prints the growth of the
relay's VmRSS and what its sio_relay_recovery_buffered_* gauges say. Standard library only.
"""
import json, subprocess, time, urllib.request, os, sys
def rss(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"): return int(l.split()[1])
def post(body):
    r = urllib.request.Request("http://127.0.0.1:29101/v1/emit", data=json.dumps(body).encode(), headers={"content-type":"application/json"})
    return json.load(urllib.request.urlopen(r, timeout=10))
def metric(name):
    for l in urllib.request.urlopen("http://127.0.0.1:29101/metrics").read().decode().splitlines():
        if l.startswith(name+" "): return float(l.split()[1])
enabled = sys.argv[2]
env = dict(os.environ, SIO_RELAY_RECOVERY_ENABLED=enabled, SIO_RELAY_RECOVERY_MAX_BUFFERED_MESSAGES="100000", SIO_RELAY_RECOVERY_MAX_BUFFERED_BYTES="1000000000", SIO_RELAY_LOG_LEVEL="warn")
p = subprocess.Popen([sys.argv[1], "--listen", "127.0.0.1:29100", "--admin-listen", "127.0.0.1:29101"], env=env)
try:
    for _ in range(100):
        try: urllib.request.urlopen("http://127.0.0.1:29101/healthz"); break
        except Exception: time.sleep(0.1)
    # Warm the allocator and the admin path with a few batches first.
    pad = "x" * 64
    def batch(start): return [{"to": "room-%d" % (i % 20), "event": "news", "data": {"n": i, "pad": pad}} for i in range(start, start + 500)]
    for s in range(0, 5000, 500): post(batch(s))
    before = rss(p.pid); m0 = metric("sio_relay_recovery_buffered_messages") or 0
    for s in range(5000, 105000, 500): post(batch(s))
    time.sleep(0.5)
    after = rss(p.pid); m1 = metric("sio_relay_recovery_buffered_messages") or 0
    b1 = metric("sio_relay_recovery_buffered_bytes") or 0
    n = 100000
    print(f"recovery={enabled} rss_growth_kib={after-before} per_message_bytes={(after-before)*1024/n:.0f} logged={m1-m0:.0f} accounted_bytes_per_message={b1/max(m1,1):.0f}")
finally:
    p.terminate(); p.wait()
