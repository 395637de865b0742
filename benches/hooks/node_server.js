// The Node.js reference for benches/hooks: socket.io 4 answering "message-with-ack" with its
// arguments from an in-process handler (what a hook backend does for sio-relay).
//   node node_server.js 29100
"use strict";
const path = require("node:path");
const { Server } = require(path.join(__dirname, "../../tests/clients/node_modules/socket.io"));
const io = new Server(Number(process.argv[2] || 29100), { transports: ["websocket"] });
io.on("connection", (socket) => {
  socket.on("message-with-ack", (...args) => {
    const ack = args.pop();
    ack(...args);
  });
});
console.log(JSON.stringify({ listening: Number(process.argv[2] || 29100) }));
