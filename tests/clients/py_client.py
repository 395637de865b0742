#!/usr/bin/env python3
"""Scripted python-socketio driver for the integration tests.

Prints one JSON object per line on stdout (what the client library reports) and reads one
JSON command per line on stdin. The command line and the line protocol are the same as
js_client.js's; see tests/clients/README.md. ``--async`` uses ``socketio.AsyncClient``
(aiohttp) instead of ``socketio.Client`` (requests + websocket-client).
"""

import argparse
import asyncio
import base64
import json
import os
import sys
import threading

import socketio

_print_lock = threading.Lock()


def emit_line(obj):
    text = json.dumps(obj, separators=(",", ":"))
    with _print_lock:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def to_wire(value):
    """Binary values become {"$binary": "<base64>"}; the rest stays JSON."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$binary": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    return value


def from_wire(value):
    """The reverse: exactly {"$binary": "<base64>"} becomes bytes."""
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    if isinstance(value, dict):
        if list(value.keys()) == ["$binary"] and isinstance(value["$binary"], str):
            return base64.b64decode(value["$binary"])
        return {k: from_wire(v) for k, v in value.items()}
    return value


def error_message(data):
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"]
    if isinstance(data, str):
        return data
    return json.dumps(to_wire(data))


def parse_args(argv):
    def usage_error(message):
        sys.stderr.write(f"py_client: {message}\n")
        sys.exit(2)

    p = argparse.ArgumentParser(prog="py_client.py")
    p.add_argument("--url", required=True)
    p.add_argument("--path", default="/socket.io/")
    p.add_argument("--transports", default="polling,websocket")
    p.add_argument("--ns", action="append", default=[])
    p.add_argument("--auth")
    p.add_argument("--reconnect", dest="reconnection", action="store_true", default=True)
    p.add_argument("--no-reconnect", dest="reconnection", action="store_false")
    p.add_argument("--ack", action="append", default=[])
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--timeout-ms", type=int, default=20000)
    p.add_argument("--async", dest="use_async", action="store_true")
    p.add_argument("--parser", choices=["json", "msgpack"], default="json")
    args = p.parse_args(argv)

    namespaces = [ns for spec in args.ns for ns in spec.split(",") if ns]
    args.namespaces = namespaces or ["/"]
    args.transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    for t in args.transports:
        if t not in ("polling", "websocket"):
            usage_error(f"unknown transport {t}")
    if args.auth is not None:
        try:
            args.auth = json.loads(args.auth)
        except ValueError as e:
            usage_error(f"--auth: invalid JSON: {e}")
    acks = {}
    for spec in args.ack:
        event, sep, answer = spec.partition("=")
        if not sep or not event:
            usage_error("--ack takes EVENT=JSON_ARRAY")
        try:
            reply = json.loads(answer)
        except ValueError as e:
            usage_error(f"--ack: invalid JSON: {e}")
        if not isinstance(reply, list):
            usage_error("--ack: the answer must be a JSON array")
        acks[event] = reply
    args.acks = acks
    headers = {}
    for spec in args.header:
        name, sep, value = spec.partition(":")
        if not sep or not name.strip():
            usage_error("--header takes 'Name: value'")
        headers[name.strip()] = value.strip()
    args.headers = headers
    return args


class Driver:
    """Handlers and commands shared by the sync and the async client."""

    def __init__(self, opts, sio):
        self.opts = opts
        self.sio = sio
        sio.on("connect", self.on_connect, namespace="*")
        sio.on("connect_error", self.on_connect_error, namespace="*")
        sio.on("disconnect", self.on_disconnect, namespace="*")
        sio.on("*", self.on_event, namespace="*")

    def transport(self):
        try:
            return self.sio.transport()
        except Exception:  # not connected
            return None

    def on_connect(self, ns):
        emit_line(
            {
                "type": "connect",
                "ns": ns,
                "sid": self.sio.get_sid(ns),
                "transport": self.transport(),
            }
        )

    def on_connect_error(self, ns, *data):
        line = {"type": "connect_error", "ns": ns}
        first = data[0] if data else None
        line["message"] = error_message(first)
        if isinstance(first, dict) and "data" in first:
            line["data"] = to_wire(first["data"])
        emit_line(line)

    def on_disconnect(self, ns, reason=None):
        emit_line({"type": "disconnect", "ns": ns, "reason": reason})

    def on_event(self, event, ns, *args):
        ack_id = getattr(self.sio, "last_event_ack_id", None)
        emit_line(
            {
                "type": "event",
                "ns": ns,
                "event": event,
                "args": to_wire(list(args)),
                "ack_requested": ack_id is not None,
            }
        )
        reply = self.opts.acks.get(event, self.opts.acks.get("*"))
        if reply is None:
            return None
        # A tuple is sent as the ack's argument list.
        return tuple(from_wire(reply))

    def connect_kwargs(self):
        kwargs = {
            "headers": self.opts.headers,
            "transports": self.opts.transports,
            "namespaces": self.opts.namespaces,
            "socketio_path": self.opts.path,
            "wait": False,
            "retry": self.opts.reconnection,
        }
        if self.opts.auth is not None:
            kwargs["auth"] = self.opts.auth
        return kwargs

    def namespace_of(self, cmd):
        ns = cmd.get("ns") or self.opts.namespaces[0]
        if ns not in self.opts.namespaces:
            emit_line({"type": "error", "message": f"not a namespace of this client: {ns}"})
            return None
        return ns

    def emit_call(self, cmd, on_timer):
        """Returns (event, data, ns, callback) for sio.emit, or None."""
        ns = self.namespace_of(cmd)
        if ns is None:
            return None
        event = cmd.get("event")
        data = tuple(from_wire(cmd.get("args") or []))
        if not cmd.get("ack"):
            return event, data, ns, None
        tag = cmd.get("id")
        done = threading.Event()

        def callback(*reply):
            if done.is_set():
                return
            done.set()
            emit_line({"type": "ack", "ns": ns, "event": event, "id": tag, "args": to_wire(list(reply))})

        timeout_ms = cmd.get("timeout_ms")
        if isinstance(timeout_ms, int):

            def expire():
                if not done.is_set():
                    done.set()
                    emit_line({"type": "ack_timeout", "ns": ns, "event": event, "id": tag})

            on_timer(timeout_ms / 1000.0, expire)
        return event, data, ns, callback

    def status_line(self):
        connected = {}
        for ns in self.opts.namespaces:
            connected[ns] = self.sio.namespaces.get(ns)
        return {"type": "status", "connected": connected, "transport": self.transport()}


def parse_command(line):
    line = line.strip()
    if not line:
        return None
    try:
        cmd = json.loads(line)
    except ValueError as e:
        emit_line({"type": "error", "message": f"invalid command: {e}"})
        return None
    if not isinstance(cmd, dict):
        emit_line({"type": "error", "message": "a command is a JSON object"})
        return None
    return cmd


def leave(code):
    sys.stdout.flush()
    os._exit(code)


class SyncClient(socketio.Client):
    """Records whether the event being handled asked for an acknowledgement."""

    def _handle_event(self, namespace, id, data):
        self.last_event_ack_id = id
        return super()._handle_event(namespace, id, data)


class AsyncClient(socketio.AsyncClient):
    """Records whether the event being handled asked for an acknowledgement."""

    async def _handle_event(self, namespace, id, data):
        self.last_event_ack_id = id
        return await super()._handle_event(namespace, id, data)


def client_kwargs(opts):
    kwargs = {
        "reconnection": opts.reconnection,
        "reconnection_delay": 0.2,
        "reconnection_delay_max": 1,
        "request_timeout": max(1, opts.timeout_ms // 1000),
    }
    if opts.parser == "msgpack":
        kwargs["serializer"] = "msgpack"
    return kwargs


def run_sync(opts):
    sio = SyncClient(**client_kwargs(opts))
    driver = Driver(opts, sio)

    def connect():
        try:
            sio.connect(opts.url, **driver.connect_kwargs())
        except socketio.exceptions.ConnectionError:
            # The connect_error handler has already reported it.
            pass
        except Exception as e:  # noqa: BLE001 - report anything the library raises
            emit_line({"type": "error", "message": f"connect failed: {e!r}"})

    threading.Thread(target=connect, daemon=True).start()

    def timer(seconds, fn):
        t = threading.Timer(seconds, fn)
        t.daemon = True
        t.start()

    for line in sys.stdin:
        cmd = parse_command(line)
        if cmd is None:
            continue
        try:
            kind = cmd.get("cmd")
            if kind == "emit":
                call = driver.emit_call(cmd, timer)
                if call is not None:
                    event, data, ns, callback = call
                    sio.emit(event, data, namespace=ns, callback=callback)
            elif kind == "disconnect":
                if cmd.get("ns") is not None and len(opts.namespaces) > 1:
                    emit_line({"type": "error", "message": "python-socketio disconnects all namespaces at once"})
                else:
                    sio.disconnect()
            elif kind == "status":
                emit_line(driver.status_line())
            elif kind == "exit":
                break
            else:
                emit_line({"type": "error", "message": f"unknown command {kind!r}"})
        except Exception as e:  # noqa: BLE001
            emit_line({"type": "error", "message": repr(e)})
    try:
        sio.disconnect()
    except Exception:  # noqa: BLE001
        pass
    leave(0)


async def run_async(opts):
    sio = AsyncClient(**client_kwargs(opts))
    driver = Driver(opts, sio)
    loop = asyncio.get_running_loop()

    async def connect():
        try:
            await sio.connect(opts.url, **driver.connect_kwargs())
        except socketio.exceptions.ConnectionError:
            pass
        except Exception as e:  # noqa: BLE001
            emit_line({"type": "error", "message": f"connect failed: {e!r}"})

    connect_task = asyncio.create_task(connect())

    def timer(seconds, fn):
        loop.call_later(seconds, fn)

    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if line == "":
            break
        cmd = parse_command(line)
        if cmd is None:
            continue
        try:
            kind = cmd.get("cmd")
            if kind == "emit":
                call = driver.emit_call(cmd, timer)
                if call is not None:
                    event, data, ns, callback = call
                    await sio.emit(event, data, namespace=ns, callback=callback)
            elif kind == "disconnect":
                if cmd.get("ns") is not None and len(opts.namespaces) > 1:
                    emit_line({"type": "error", "message": "python-socketio disconnects all namespaces at once"})
                else:
                    await sio.disconnect()
            elif kind == "status":
                emit_line(driver.status_line())
            elif kind == "exit":
                break
            else:
                emit_line({"type": "error", "message": f"unknown command {kind!r}"})
        except Exception as e:  # noqa: BLE001
            emit_line({"type": "error", "message": repr(e)})
    connect_task.cancel()
    try:
        await asyncio.wait_for(sio.disconnect(), timeout=2)
    except Exception:  # noqa: BLE001
        pass
    leave(0)


def main():
    opts = parse_args(sys.argv[1:])
    if opts.use_async:
        asyncio.run(run_async(opts))
    else:
        run_sync(opts)


if __name__ == "__main__":
    main()
