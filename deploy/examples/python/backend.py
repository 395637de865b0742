"""A sio-relay hook backend in Python (aiohttp).

It checks every request's signature, answers client events with an acknowledgement, and
pushes a notice to the sender (its user when it has one, else its sid) through the admin
API. Copy it and put your application's logic in `on_event`, `on_connect`, `on_disconnect`.

Environment:
  HOOK_SECRET        the relay's hooks.secret (required)
  LISTEN_HOST/PORT   where to listen (default 127.0.0.1:8000; PORT=0 picks a free port)
  RELAY_ADMIN_URL    the relay's admin API (default http://127.0.0.1:3001)
  RELAY_ADMIN_TOKEN  one of the relay's admin.tokens (optional)

Relay side:
  [hooks]
  url = "http://127.0.0.1:8000/hook"
  secret = "..."            # same as HOOK_SECRET
  events = ["*"]
  lifecycle = ["connect", "disconnect"]
"""

import asyncio
import hashlib
import hmac
import json
import os
import sys
import time
from collections import OrderedDict

from aiohttp import ClientSession, ClientTimeout, web

SECRET = os.environ["HOOK_SECRET"].encode()
ADMIN_URL = os.environ.get("RELAY_ADMIN_URL", "http://127.0.0.1:3001").rstrip("/")
ADMIN_TOKEN = os.environ.get("RELAY_ADMIN_TOKEN")
# Requests signed longer ago than this are refused: a captured request cannot be replayed later.
MAX_AGE_S = 300

# Lifecycle events are delivered at least once: the same delivery id may come twice.
_seen = OrderedDict()


def first_delivery(delivery):
    if delivery in _seen:
        return False
    _seen[delivery] = True
    if len(_seen) > 10_000:
        _seen.popitem(last=False)
    return True


def signed(request, body):
    """True when the request carries a valid, recent signature of its body."""
    timestamp = request.headers.get("X-Sio-Relay-Timestamp", "")
    signature = request.headers.get("X-Sio-Relay-Signature", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_AGE_S:
        return False
    mac = hmac.new(SECRET, timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(signature, "v1=" + mac.hexdigest())


async def push(session, body):
    """POST /v1/emit on the relay's admin API."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"} if ADMIN_TOKEN else {}
    async with session.post(f"{ADMIN_URL}/v1/emit", json=body, headers=headers) as resp:
        if resp.status != 200:
            print("push refused:", resp.status, await resp.text(), file=sys.stderr)


async def on_event(app, hook):
    # Push to every device of the sender's user (or to this socket alone).
    target = {"user": hook["user"]} if hook["user"] else {"to": hook["sid"]}
    await push(
        app["http"],
        {**target, "namespace": hook["namespace"], "event": "notice",
         "data": {"received": hook["event"]}},
    )
    answer = {}
    if hook["ack"]:
        answer["ack"] = [{"ok": True, "event": hook["event"], "args": hook["args"]}]
    return answer


async def on_connect(app, hook):
    return {"emit": [{"event": "welcome", "data": {"sid": hook["sid"]}}]}


async def on_disconnect(app, hook):
    return {}


HANDLERS = {"event": on_event, "connect": on_connect, "disconnect": on_disconnect}


async def handle(request):
    body = await request.read()
    if not signed(request, body):
        return web.json_response({"error": "bad signature"}, status=401)
    hook = json.loads(body)
    if hook["type"] != "event" and not first_delivery(request.headers["X-Sio-Relay-Delivery"]):
        return web.json_response({})  # a retry of what was already handled
    handler = HANDLERS.get(hook["type"])
    if handler is None:
        return web.json_response({"error": "unknown type"}, status=400)
    return web.json_response(await handler(request.app, hook))


async def main():
    app = web.Application()
    app.router.add_post("/hook", handle)
    app["http"] = ClientSession(timeout=ClientTimeout(total=5))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(
        runner, os.environ.get("LISTEN_HOST", "127.0.0.1"), int(os.environ.get("PORT", "8000"))
    )
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(json.dumps({"listening": port}), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await app["http"].close()
        await runner.cleanup()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
