// The application the official socket.io-protocol test suite expects, as a sio-relay hook
// backend: on connect an "auth" event carrying the handshake's auth payload, "message"
// echoed back as "message-back", "message-with-ack" acknowledged with its arguments.
//
// The handshake's auth payload reaches the backend through [auth] mode = "webhook": the
// /authorize answer stores it as the socket's data, which the connect hook carries.
// Plain Node.js (http); prints {"listening": PORT} once ready. Tests only: no signature
// check (the relay runs on loopback with this backend).
"use strict";

const http = require("node:http");

function answer(body) {
  switch (body.type) {
    case "authorize":
      return { data: body.auth && typeof body.auth === "object" ? body.auth : {} };
    case "connect":
      return { emit: [{ event: "auth", data: body.data || {} }] };
    case "event":
      if (body.event === "message") return { emit: [{ event: "message-back", args: body.args }] };
      if (body.event === "message-with-ack") return { ack: body.args };
      return {};
    default:
      return {};
  }
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks));
    } catch {
      res.writeHead(400).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(answer(body)));
  });
});

server.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  console.log(JSON.stringify({ listening: server.address().port }));
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
