#!/usr/bin/env node
// A Node.js member of a sio-relay cluster, for the cluster tests: either a real Socket.IO
// 4 server using @socket.io/redis-adapter (`--mode server`), or an @socket.io/redis-emitter
// publisher (`--mode emitter`). Same line protocol as the client drivers: one JSON command
// per line on stdin, one JSON object per line on stdout.
//
//   node node_peer.js --mode server --redis redis://127.0.0.1:6379 --key PREFIX [--port N]
//   node node_peer.js --mode emitter --redis redis://127.0.0.1:6379 --key PREFIX
//
// Printed: {"type":"ready","port":N} (server; port of its Socket.IO listener) or
// {"type":"ready"} (emitter) once connected to Redis; {"type":"done","id":…} after each
// command, with `sockets` for fetch; {"type":"error","id":…,"message":…} when one failed.
//
// Commands (`ns` defaults to "/", `to`/`except` are a room or a list of rooms):
//   {"cmd":"emit","id":1,"ns":"/","to":"room","except":"sid","event":"ev","args":[…]}
//   {"cmd":"fetch","id":2,"ns":"/","to":"room"}        (server) io.fetchSockets()
//   {"cmd":"exit"}

"use strict";

const readline = require("readline");
const { createClient } = require("redis");

function parseArgs(argv) {
  const opts = { mode: "server", redis: "redis://127.0.0.1:6379", key: "socket.io", port: 0 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      return argv[++i];
    };
    if (flag === "--mode") opts.mode = value();
    else if (flag === "--redis") opts.redis = value();
    else if (flag === "--key") opts.key = value();
    else if (flag === "--port") opts.port = Number(value());
    else throw new Error(`unknown flag ${flag}`);
  }
  return opts;
}

function print(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function target(op, cmd) {
  let t = op;
  if (cmd.to !== undefined && cmd.to !== null) t = t.to(cmd.to);
  if (cmd.except !== undefined && cmd.except !== null) t = t.except(cmd.except);
  return t;
}

async function startServer(opts) {
  const http = require("http");
  const { Server } = require("socket.io");
  const { createAdapter } = require("@socket.io/redis-adapter");
  const pub = createClient({ url: opts.redis });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on("error", (e) => print({ type: "redis_error", message: String(e) }));
  await Promise.all([pub.connect(), sub.connect()]);
  const requests = `${opts.key}-request#/#`;
  const before = (await pub.pubSubNumSub(requests))[requests];
  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    adapter: createAdapter(pub, sub, { key: opts.key, requestsTimeout: 3000 }),
  });
  io.on("connection", (socket) => print({ type: "connection", ns: "/", sid: socket.id }));
  await new Promise((resolve) => httpServer.listen(opts.port, "127.0.0.1", resolve));
  // The adapter subscribes in the background; other nodes count servers with NUMSUB, so
  // wait until this one is counted.
  for (let i = 0; i < 200 && (await pub.pubSubNumSub(requests))[requests] <= before; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  print({ type: "ready", port: httpServer.address().port });
  return {
    async run(cmd) {
      const nsp = io.of(cmd.ns || "/");
      if (cmd.cmd === "emit") {
        target(nsp, cmd).emit(cmd.event, ...(cmd.args || []));
        return {};
      }
      if (cmd.cmd === "fetch") {
        const sockets = await target(nsp, cmd).fetchSockets();
        return { sockets: sockets.map((s) => ({ id: s.id, rooms: [...s.rooms] })) };
      }
      throw new Error(`unknown command ${cmd.cmd}`);
    },
    async close() {
      io.close();
      await Promise.allSettled([pub.quit(), sub.quit()]);
    },
  };
}

async function startEmitter(opts) {
  const { Emitter } = require("@socket.io/redis-emitter");
  const client = createClient({ url: opts.redis });
  client.on("error", (e) => print({ type: "redis_error", message: String(e) }));
  await client.connect();
  const emitter = new Emitter(client, { key: opts.key });
  print({ type: "ready" });
  return {
    async run(cmd) {
      const nsp = emitter.of(cmd.ns || "/");
      if (cmd.cmd === "emit") {
        target(nsp, cmd).emit(cmd.event, ...(cmd.args || []).map(decodeArg));
        return {};
      }
      throw new Error(`unknown command ${cmd.cmd}`);
    },
    async close() {
      await client.quit().catch(() => {});
    },
  };
}

// {"$binary": "<base64>"} → Buffer, {"$date": "<ISO>"} → Date, as the emitter sends them.
function decodeArg(value) {
  if (Array.isArray(value)) return value.map(decodeArg);
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$binary") return Buffer.from(value.$binary, "base64");
    if (keys.length === 1 && keys[0] === "$date") return new Date(value.$date);
    return Object.fromEntries(keys.map((k) => [k, decodeArg(value[k])]));
  }
  return value;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const peer = opts.mode === "emitter" ? await startEmitter(opts) : await startServer(opts);
  const rl = readline.createInterface({ input: process.stdin });
  // Commands run one at a time, in order.
  let chain = Promise.resolve();
  rl.on("line", (line) => {
    if (!line.trim()) return;
    chain = chain.then(async () => {
      let cmd;
      try {
        cmd = JSON.parse(line);
      } catch (e) {
        print({ type: "error", message: `bad command: ${e.message}` });
        return;
      }
      if (cmd.cmd === "exit") {
        await peer.close();
        process.exit(0);
      }
      try {
        const result = await peer.run(cmd);
        print({ type: "done", id: cmd.id ?? null, ...result });
      } catch (e) {
        print({ type: "error", id: cmd.id ?? null, message: String(e && e.message ? e.message : e) });
      }
    });
  });
  rl.on("close", () => {
    chain.then(() => peer.close()).then(() => process.exit(0));
  });
}

main().catch((e) => {
  print({ type: "error", message: String(e && e.stack ? e.stack : e) });
  process.exit(1);
});
