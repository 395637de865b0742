// A sio-relay hook backend in Node.js, with nothing but the standard library (http, crypto,
// fetch; Node 18+).
//
// It checks every request's signature, answers client events with an acknowledgement, and
// pushes a notice to the sender (its user when it has one, else its sid) through the admin
// API. Copy it and put your application's logic in onEvent, onConnect, onDisconnect.
//
// Environment:
//   HOOK_SECRET        the relay's hooks.secret (required)
//   LISTEN_HOST/PORT   where to listen (default 127.0.0.1:8000; PORT=0 picks a free port)
//   RELAY_ADMIN_URL    the relay's admin API (default http://127.0.0.1:3001)
//   RELAY_ADMIN_TOKEN  one of the relay's admin.tokens (optional)
"use strict";

const http = require("node:http");
const crypto = require("node:crypto");

const SECRET = process.env.HOOK_SECRET;
if (!SECRET) {
  console.error("HOOK_SECRET is required");
  process.exit(2);
}
const ADMIN_URL = (process.env.RELAY_ADMIN_URL || "http://127.0.0.1:3001").replace(/\/$/, "");
const ADMIN_TOKEN = process.env.RELAY_ADMIN_TOKEN;
// Requests signed longer ago than this are refused: a captured request cannot be replayed later.
const MAX_AGE_S = 300;
// Bodies larger than this are refused before they are read whole.
const MAX_BODY = 1 << 20;

// Lifecycle events are delivered at least once: the same delivery id may come twice.
const seen = new Map();
function firstDelivery(id) {
  if (seen.has(id)) return false;
  seen.set(id, true);
  if (seen.size > 10000) seen.delete(seen.keys().next().value);
  return true;
}

function signed(req, body) {
  const timestamp = req.headers["x-sio-relay-timestamp"] || "";
  const signature = Buffer.from(req.headers["x-sio-relay-signature"] || "");
  if (!/^\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - Number(timestamp)) > MAX_AGE_S) {
    return false;
  }
  const mac = crypto.createHmac("sha256", SECRET).update(`${timestamp}.`).update(body);
  const expected = Buffer.from(`v1=${mac.digest("hex")}`);
  return signature.length === expected.length && crypto.timingSafeEqual(signature, expected);
}

async function push(body) {
  const headers = { "content-type": "application/json" };
  if (ADMIN_TOKEN) headers.authorization = `Bearer ${ADMIN_TOKEN}`;
  const res = await fetch(`${ADMIN_URL}/v1/emit`, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  if (res.status !== 200) console.error("push refused:", res.status, await res.text());
}

async function onEvent(hook) {
  // Push to every device of the sender's user (or to this socket alone).
  const target = hook.user ? { user: hook.user } : { to: hook.sid };
  await push({ ...target, namespace: hook.namespace, event: "notice", data: { received: hook.event } });
  return hook.ack ? { ack: [{ ok: true, event: hook.event, args: hook.args }] } : {};
}

async function onConnect(hook) {
  return { emit: [{ event: "welcome", data: { sid: hook.sid } }] };
}

async function onDisconnect(hook) {
  return {};
}

const handlers = { event: onEvent, connect: onConnect, disconnect: onDisconnect };

function reply(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

const server = http.createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/hook") return reply(res, 404, { error: "not found" });
  const chunks = [];
  let size = 0;
  req.on("data", (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY) {
      reply(res, 413, { error: "too large" });
      req.destroy();
    } else {
      chunks.push(chunk);
    }
  });
  req.on("end", async () => {
    const body = Buffer.concat(chunks);
    if (!signed(req, body)) return reply(res, 401, { error: "bad signature" });
    const hook = JSON.parse(body);
    if (hook.type !== "event" && !firstDelivery(req.headers["x-sio-relay-delivery"])) {
      return reply(res, 200, {}); // a retry of what was already handled
    }
    const handler = handlers[hook.type];
    if (!handler) return reply(res, 400, { error: "unknown type" });
    try {
      reply(res, 200, await handler(hook));
    } catch (err) {
      console.error(err);
      reply(res, 500, { error: "internal" });
    }
  });
});

server.listen(Number(process.env.PORT || 8000), process.env.LISTEN_HOST || "127.0.0.1", () => {
  console.log(JSON.stringify({ listening: server.address().port }));
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
