#!/usr/bin/env node
// Scripted socket.io-client driver for the integration tests.
//
// Prints one JSON object per line on stdout (what the client library reports) and reads
// one JSON command per line on stdin. The command line and the line protocol are the same
// as py_client.py's; see tests/clients/README.md.

"use strict";

const readline = require("readline");

function usage(message) {
  process.stderr.write(`js_client: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {
    url: null,
    path: "/socket.io/",
    transports: ["polling", "websocket"],
    namespaces: [],
    auth: undefined,
    reconnection: true,
    acks: new Map(),
    headers: {},
    timeoutMs: 20000,
    client: "v4",
    parser: "json",
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${flag} needs a value`);
      return argv[++i];
    };
    const json = (text) => {
      try {
        return JSON.parse(text);
      } catch (e) {
        usage(`${flag}: invalid JSON: ${e.message}`);
      }
    };
    switch (flag) {
      case "--url":
        opts.url = value();
        break;
      case "--path":
        opts.path = value();
        break;
      case "--transports":
        opts.transports = value()
          .split(",")
          .map((t) => t.trim())
          .filter((t) => t.length > 0);
        break;
      case "--ns":
        for (const ns of value().split(",")) {
          if (ns.length > 0) opts.namespaces.push(ns);
        }
        break;
      case "--auth":
        opts.auth = json(value());
        break;
      case "--reconnect":
        opts.reconnection = true;
        break;
      case "--no-reconnect":
        opts.reconnection = false;
        break;
      case "--ack": {
        const spec = value();
        const eq = spec.indexOf("=");
        if (eq <= 0) usage("--ack takes EVENT=JSON_ARRAY");
        const args = json(spec.slice(eq + 1));
        if (!Array.isArray(args)) usage("--ack: the answer must be a JSON array");
        opts.acks.set(spec.slice(0, eq), args);
        break;
      }
      case "--header": {
        const spec = value();
        const colon = spec.indexOf(":");
        if (colon <= 0) usage("--header takes 'Name: value'");
        opts.headers[spec.slice(0, colon).trim()] = spec.slice(colon + 1).trim();
        break;
      }
      case "--timeout-ms":
        opts.timeoutMs = Number(value());
        break;
      case "--client":
        opts.client = value();
        if (opts.client !== "v4" && opts.client !== "v2") usage("--client takes v4 or v2");
        break;
      case "--parser":
        opts.parser = value();
        if (opts.parser !== "json" && opts.parser !== "msgpack") {
          usage("--parser takes json or msgpack");
        }
        break;
      case "--async":
        // Only meaningful for the Python driver; accepted so both share one command line.
        break;
      default:
        usage(`unknown argument ${flag}`);
    }
  }
  if (!opts.url) usage("--url is required");
  if (opts.client === "v2" && opts.parser !== "json") usage("--client v2 speaks only json");
  if (opts.namespaces.length === 0) opts.namespaces.push("/");
  for (const t of opts.transports) {
    if (t !== "polling" && t !== "websocket") usage(`unknown transport ${t}`);
  }
  return opts;
}

// Binary values become {"$binary": "<base64>"}; everything else is kept as JSON.
function toWire(value) {
  if (Buffer.isBuffer(value)) return { $binary: value.toString("base64") };
  if (value instanceof ArrayBuffer) return { $binary: Buffer.from(value).toString("base64") };
  if (ArrayBuffer.isView(value)) {
    return {
      $binary: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64"),
    };
  }
  if (Array.isArray(value)) return value.map(toWire);
  if (value !== null && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = toWire(v);
    return out;
  }
  return value === undefined ? null : value;
}

// The reverse: {"$binary": "<base64>"} (and only that exact shape) becomes a Buffer.
function fromWire(value) {
  if (Array.isArray(value)) return value.map(fromWire);
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$binary" && typeof value.$binary === "string") {
      return Buffer.from(value.$binary, "base64");
    }
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = fromWire(v);
    return out;
  }
  return value;
}

function print(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function errorMessage(err) {
  if (err && typeof err.message === "string") return err.message;
  return String(err);
}

// socket.io-client 2.x has no onAny: take over its event dispatch instead.
function onAnyV2(socket, handler) {
  socket.onevent = (packet) => {
    const data = Array.isArray(packet.data) ? packet.data.slice() : [];
    const event = data.shift();
    if (packet.id != null) data.push(socket.ack(packet.id));
    handler(event, ...data);
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const v2 = opts.client === "v2";
  // socket.io-client 2.x (Engine.IO v3) is installed under an npm alias.
  const { Manager } = require(v2 ? "socket.io-client-v2" : "socket.io-client");
  const managerOpts = {
    path: opts.path,
    transports: opts.transports,
    reconnection: opts.reconnection,
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
    timeout: opts.timeoutMs,
    extraHeaders: opts.headers,
    autoConnect: true,
  };
  if (opts.parser === "msgpack") managerOpts.parser = require("socket.io-msgpack-parser");
  const manager = new Manager(opts.url, managerOpts);

  const transportName = () =>
    manager.engine && manager.engine.transport ? manager.engine.transport.name : null;

  manager.on("open", () => {
    manager.engine.on("upgrade", (transport) => {
      print({ type: "upgrade", transport: transport.name });
    });
  });
  manager.on("reconnect_attempt", (attempt) => print({ type: "reconnecting", attempt }));
  manager.on("reconnect_failed", () => print({ type: "reconnect_failed" }));

  const sockets = new Map();
  for (const ns of opts.namespaces) {
    const socketOpts = {};
    // 2.x has no `auth` payload: its namespace `query` stands for it (outside `/`).
    if (opts.auth !== undefined) socketOpts[v2 ? "query" : "auth"] = opts.auth;
    const socket = manager.socket(ns, socketOpts);
    sockets.set(ns, socket);
    socket.on("connect", () => {
      // `recovered`: the server restored this socket (connection state recovery).
      print({
        type: "connect",
        ns,
        sid: socket.id,
        transport: transportName(),
        recovered: socket.recovered === true,
      });
    });
    socket.on("connect_error", (err) => {
      const line = { type: "connect_error", ns, message: errorMessage(err) };
      if (err && err.data !== undefined) line.data = toWire(err.data);
      print(line);
    });
    // 2.x reports a refused namespace as an "error" event carrying the error packet's
    // payload: a message, or an object with `message` and `data`.
    if (v2) {
      socket.on("error", (err) => {
        const line = { type: "connect_error", ns, message: errorMessage(err) };
        if (err && typeof err === "object" && err.data !== undefined) line.data = toWire(err.data);
        print(line);
      });
    }
    socket.on("disconnect", (reason) => print({ type: "disconnect", ns, reason }));
    const onEvent = (event, ...args) => {
      let ack = null;
      if (args.length > 0 && typeof args[args.length - 1] === "function") ack = args.pop();
      print({ type: "event", ns, event, args: toWire(args), ack_requested: ack !== null });
      if (ack !== null) {
        const reply = opts.acks.get(event) ?? opts.acks.get("*");
        if (reply !== undefined) ack(...fromWire(reply));
      }
    };
    if (v2) {
      onAnyV2(socket, onEvent);
    } else {
      socket.onAny(onEvent);
      socket.connect();
    }
  }

  // The TCP socket under the WebSocket transport.
  const rawSocket = () => {
    const transport = manager.engine && manager.engine.transport;
    const raw = transport && transport.ws && transport.ws._socket;
    if (!raw) print({ type: "error", message: "no WebSocket transport to act on" });
    return raw;
  };

  const pickSocket = (cmd) => {
    const ns = cmd.ns ?? opts.namespaces[0];
    const socket = sockets.get(ns);
    if (!socket) print({ type: "error", message: `not a namespace of this client: ${ns}` });
    return socket;
  };

  let exiting = false;
  const exit = (code) => {
    if (exiting) return;
    exiting = true;
    for (const socket of sockets.values()) socket.disconnect();
    // Let the disconnect packets and the last lines go out, then leave.
    setTimeout(() => process.exit(code), 100);
  };

  const handle = (cmd) => {
    switch (cmd.cmd) {
      case "emit": {
        const socket = pickSocket(cmd);
        if (!socket) return;
        const args = fromWire(Array.isArray(cmd.args) ? cmd.args : []);
        const ns = socket.nsp;
        if (cmd.ack) {
          const tag = cmd.id ?? null;
          if (typeof cmd.timeout_ms === "number") {
            // socket.timeout() is 4.x only: time the answer here, the same for both.
            let done = false;
            const timer = setTimeout(() => {
              done = true;
              print({ type: "ack_timeout", ns, event: cmd.event, id: tag });
            }, cmd.timeout_ms);
            socket.emit(cmd.event, ...args, (...reply) => {
              if (done) return;
              clearTimeout(timer);
              print({ type: "ack", ns, event: cmd.event, id: tag, args: toWire(reply) });
            });
          } else {
            socket.emit(cmd.event, ...args, (...reply) => {
              print({ type: "ack", ns, event: cmd.event, id: tag, args: toWire(reply) });
            });
          }
        } else {
          socket.emit(cmd.event, ...args);
        }
        return;
      }
      case "disconnect": {
        if (cmd.ns !== undefined) {
          const socket = pickSocket(cmd);
          if (socket) socket.disconnect();
        } else {
          for (const socket of sockets.values()) socket.disconnect();
        }
        return;
      }
      case "kill_transport": {
        // A network failure: the WebSocket's TCP connection is destroyed without a close
        // frame. With `pause_ms`, the next reconnection waits that long.
        if (typeof cmd.pause_ms === "number") {
          manager.randomizationFactor(0);
          manager.reconnectionDelay(cmd.pause_ms);
          manager.reconnectionDelayMax(cmd.pause_ms);
        }
        const raw = rawSocket();
        if (!raw) return;
        raw.destroy();
        return;
      }
      case "set_auth": {
        // The `auth` payload of the namespace's next CONNECT (a reconnection's included).
        const socket = pickSocket(cmd);
        if (socket) socket.auth = cmd.auth;
        return;
      }
      case "stop_reading": {
        // The client stops reading its WebSocket (the server's writes back up).
        const raw = rawSocket();
        if (raw) raw.pause();
        return;
      }
      case "status": {
        const connected = {};
        for (const [ns, socket] of sockets) connected[ns] = socket.connected ? socket.id : null;
        print({ type: "status", connected, transport: transportName() });
        return;
      }
      case "exit":
        exit(0);
        return;
      default:
        print({ type: "error", message: `unknown command ${JSON.stringify(cmd.cmd)}` });
    }
  };

  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  rl.on("line", (line) => {
    if (line.trim() === "") return;
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      print({ type: "error", message: `invalid command: ${e.message}` });
      return;
    }
    try {
      handle(cmd);
    } catch (e) {
      print({ type: "error", message: errorMessage(e) });
    }
  });
  // The test that drives us is gone: leave too.
  rl.on("close", () => exit(0));
}

main();
