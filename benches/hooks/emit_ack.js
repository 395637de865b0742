// Client events answered with an ack, at a fixed rate: emit -> ack latency and the CPU the
// servers spent per event. Measures sio-relay with a hook backend (tests/protocol/echo_backend.js)
// or a Node.js socket.io server with an in-process handler (node_server.js here), both on
// loopback. See benches/hooks/run.sh.
//
//   node emit_ack.js --url http://127.0.0.1:29000 --pids 123,456 --rate 2000 --seconds 10
//
// Emits are paced by a timer every --tick-ms (default 1): at 2,000/s that is two emits per
// millisecond, close to events arriving independently. A longer tick sends the same rate in
// bursts (--tick-ms 10: twenty at once every 10 ms), and the last of a burst waits for the
// ones before it.
//
// Prints one JSON line: events sent and acked, latency percentiles (ms), and for each pid
// its CPU time (user + system) over the measured window, in ms and µs per event.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const { io } = require(path.join(__dirname, "../../tests/clients/node_modules/socket.io-client"));

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
}
const url = arg("--url");
if (!/^http:\/\/(127\.\d+\.\d+\.\d+|localhost)(:\d+)?/.test(url || "")) {
  console.error("--url must be a loopback http:// URL");
  process.exit(2);
}
const pids = (arg("--pids", "") || "").split(",").filter(Boolean).map(Number);
const rate = Number(arg("--rate", "2000"));
const seconds = Number(arg("--seconds", "10"));
const warmup = Number(arg("--warmup", "2"));
const nclients = Number(arg("--clients", "20"));
const TICK_MS = Number(arg("--tick-ms", "1"));

function cpuMs(pid) {
  // utime and stime, fields 14 and 15, in clock ticks (100 per second on Linux).
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

async function main() {
  const sockets = await Promise.all(
    Array.from({ length: nclients }, () =>
      new Promise((resolve, reject) => {
        const s = io(url, { transports: ["websocket"], reconnection: false });
        s.once("connect", () => resolve(s));
        s.once("connect_error", reject);
      }),
    ),
  );
  const latencies = [];
  let sent = 0;
  let acked = 0;
  let measuring = false;
  let next = 0;
  // The schedule follows the clock, not the count of timer callbacks: a late callback
  // sends what is due, so the rate holds whatever the timer's jitter.
  const start = process.hrtime.bigint();
  let emitted = 0;
  const timer = setInterval(() => {
    const due = Math.floor((Number(process.hrtime.bigint() - start) / 1e9) * rate);
    while (emitted < due) {
      emitted++;
      const s = sockets[next++ % sockets.length];
      const started = process.hrtime.bigint();
      const counted = measuring;
      if (counted) sent++;
      s.timeout(5000).emit("message-with-ack", sent, "x", (err) => {
        if (err || !counted) return;
        acked++;
        latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
      });
    }
  }, TICK_MS);
  await new Promise((r) => setTimeout(r, warmup * 1000));
  const before = pids.map(cpuMs);
  measuring = true;
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const elapsed = (Date.now() - t0) / 1000;
  const after = pids.map(cpuMs);
  clearInterval(timer);
  await new Promise((r) => setTimeout(r, 1000)); // late acks
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies.length ? +latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))].toFixed(3) : null;
  const cpu = pids.map((pid, i) => ({
    pid,
    cpu_ms: +(after[i] - before[i]).toFixed(1),
    us_per_event: sent ? +(((after[i] - before[i]) * 1000) / sent).toFixed(1) : null,
  }));
  console.log(JSON.stringify({
    rate_sent: +(sent / elapsed).toFixed(0), tick_ms: TICK_MS, sent, acked,
    p50_ms: pct(50), p90_ms: pct(90), p99_ms: pct(99), max_ms: latencies.length ? +latencies[latencies.length - 1].toFixed(3) : null,
    cpu,
  }));
  sockets.forEach((s) => s.close());
  process.exit(0);
}

main().catch((e) => { console.error(e); process.exit(1); });
