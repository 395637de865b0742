"""Example client: connects to sio-relay, registers with the backend, prints what it gets."""

import json
import os
import time
import urllib.request

import socketio

RELAY_URL = os.environ.get("RELAY_URL", "http://127.0.0.1:3000")
BACKEND_URL = os.environ.get("BACKEND_URL", "http://127.0.0.1:8000")
USER_NAME = os.environ.get("USER_NAME", "alice")

sio = socketio.Client(reconnection=True)


@sio.event
def connect():
    sid = sio.get_sid("/")
    print(f"connected to {RELAY_URL} as sid {sid}", flush=True)
    # Runs again after every reconnect: a new connection has a new sid.
    for _ in range(30):
        try:
            request = urllib.request.Request(
                BACKEND_URL + "/register",
                data=json.dumps({"user": USER_NAME, "sid": sid}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                print(f"registered as {USER_NAME}: {answer.read().decode()}", flush=True)
                return
        except OSError as error:
            print(f"backend not ready ({error}), retrying", flush=True)
            time.sleep(1)


@sio.on("notification")
def notification(data):
    print(f"notification: {data}", flush=True)


@sio.event
def disconnect(reason=None):
    print(f"disconnected ({reason})", flush=True)


if __name__ == "__main__":
    sio.connect(RELAY_URL, wait_timeout=10)
    sio.wait()
