"""Example backend: pushes notifications to one user's clients through sio-relay.

Standard library only. It serves POST /register {"user": ..., "sid": ...}, which a client
calls after connecting: the backend asks the relay to put that sid in the room
"user:<name>". Every 5 seconds it emits a "notification" to each registered user's room,
and prints the relay's answer ({"recipients": N}; 0 once the user's clients are gone).
"""

import json
import os
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ADMIN_URL = os.environ.get("RELAY_ADMIN_URL", "http://127.0.0.1:3001")
ADMIN_TOKEN = os.environ.get("RELAY_ADMIN_TOKEN", "")
PORT = int(os.environ.get("PORT", "8000"))

users = set()
users_lock = threading.Lock()


def relay(path, body):
    """POST a JSON body to the relay's admin API; the decoded answer."""
    request = urllib.request.Request(
        ADMIN_URL + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    if ADMIN_TOKEN:
        request.add_header("Authorization", "Bearer " + ADMIN_TOKEN)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as refused:
        # The relay explains every refusal: {"error": {"code": ..., "message": ...}}
        return json.load(refused)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != "/register":
            self.send_error(404)
            return
        length = int(self.headers.get("Content-Length", "0"))
        try:
            body = json.loads(self.rfile.read(length))
            user, sid = str(body["user"]), str(body["sid"])
        except (ValueError, KeyError, TypeError):
            self.send_error(400, "expected {\"user\": ..., \"sid\": ...}")
            return
        # In a real application, check here that the caller is this user.
        answer = relay("/v1/join", {"to": sid, "rooms": ["user:" + user]})
        print(f"register {user} sid={sid}: {answer}", flush=True)
        with users_lock:
            users.add(user)
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def push_forever():
    count = 0
    while True:
        time.sleep(5)
        with users_lock:
            current = sorted(users)
        for user in current:
            count += 1
            answer = relay(
                "/v1/emit",
                {
                    "to": "user:" + user,
                    "event": "notification",
                    "data": {"text": f"hello {user}", "count": count},
                },
            )
            print(f"push to user:{user}: {answer}", flush=True)


if __name__ == "__main__":
    threading.Thread(target=push_forever, daemon=True).start()
    print(f"backend on :{PORT}, relay admin API at {ADMIN_URL}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
