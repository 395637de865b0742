#!/usr/bin/env python3
"""python-socketio's AsyncRedisManager in write-only mode, the way a backend pushes through
Redis to Socket.IO servers, for the cluster tests. Same line protocol as the client
drivers: one JSON command per line on stdin, one JSON object per line on stdout.

    python py_redis_manager.py --redis redis://127.0.0.1:6379 --channel socketio

Printed: {"type":"ready"} once started; {"type":"done","id":…} after each command;
{"type":"error","id":…,"message":…} when one failed.

Commands:
    {"cmd":"emit","id":1,"event":"ev","data":…,"namespace":"/","to":"sid","room":"r",
     "skip_sid":"sid"}                 AsyncRedisManager.emit (absent keys are not passed)
    {"cmd":"enter_room","id":2,"sid":"…","room":"r","namespace":"/"}
    {"cmd":"pickle","id":3,"message":{…}}
        publishes pickle.dumps(message) on the channel, what python-socketio 5.13 and
        older published
    {"cmd":"exit"}
"""

import argparse
import asyncio
import json
import pickle
import sys

import redis.asyncio as aioredis
import socketio


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def run(args):
    mgr = socketio.AsyncRedisManager(args.redis, channel=args.channel, write_only=True)
    raw = aioredis.Redis.from_url(args.redis)
    out({"type": "ready"})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        if cmd.get("cmd") == "exit":
            break
        try:
            if cmd["cmd"] == "emit":
                kwargs = {
                    k: cmd[k] for k in ("namespace", "to", "room", "skip_sid") if k in cmd
                }
                await mgr.emit(cmd["event"], cmd.get("data"), **kwargs)
            elif cmd["cmd"] == "enter_room":
                await mgr.enter_room(cmd["sid"], cmd.get("namespace", "/"), cmd["room"])
            elif cmd["cmd"] == "pickle":
                await raw.publish(args.channel, pickle.dumps(cmd["message"]))
            else:
                raise ValueError(f"unknown command {cmd['cmd']}")
            out({"type": "done", "id": cmd.get("id")})
        except Exception as e:  # reported, the driver goes on
            out({"type": "error", "id": cmd.get("id"), "message": repr(e)})
    await raw.aclose()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--channel", default="socketio")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
