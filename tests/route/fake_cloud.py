"""A tiny OpenAI-like chat server for tests, run as a separate process on loopback.

It records every chat request it receives and can be told to misbehave:
    POST /_control {"mode": "ok|500|429|400|hang|reset|sse_break|slow", "times": N, "delay": s}
    GET  /_requests  -> the recorded requests;  POST /_clear  -> forget them
`times` applies the mode to the next N chat requests only (then back to ok).
The answer echoes the last user message: "cloud: <text>", so tests can see what the cloud saw.

    python fake_cloud.py [--port 0]   # prints "PORT <n>" once listening
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"mode": "ok", "times": None, "delay": 30.0}
RECORDED: list[dict] = []


def take_mode() -> tuple[str, float]:
    with LOCK:
        mode, delay = STATE["mode"], STATE["delay"]
        if STATE["times"] is not None:
            STATE["times"] -= 1
            if STATE["times"] <= 0:
                STATE.update(mode="ok", times=None)
        return mode, delay


def last_user(messages) -> str:
    for m in reversed(messages or []):
        if m.get("role") == "user":
            c = m.get("content")
            return c if isinstance(c, str) else " ".join(p.get("text", "") for p in c if isinstance(p, dict))
    return ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection; a stream ends when we close

    def log_message(self, *args):
        pass

    def _json(self, code: int, obj, headers: dict | None = None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _reset(self):
        # SO_LINGER 0 makes close() send a TCP RST: the client sees "connection reset by peer".
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def do_GET(self):
        if self.path == "/_requests":
            with LOCK:
                return self._json(200, RECORDED)
        if self.path == "/health":
            return self._json(200, {"status": "ok"})
        self._json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if self.path == "/_control":
            with LOCK:
                STATE.update(json.loads(raw))
            return self._json(200, STATE)
        if self.path == "/_clear":
            with LOCK:
                RECORDED.clear()
                STATE.update(mode="ok", times=None, delay=30.0)
            return self._json(200, {})
        if self.path != "/v1/chat/completions":
            return self._json(404, {"error": {"message": f"no route {self.path}"}})
        body = json.loads(raw)
        with LOCK:
            RECORDED.append({"path": self.path, "authorization": self.headers.get("Authorization"),
                             "body": body, "raw": raw.decode()})
        mode, delay = take_mode()
        if mode == "hang":
            time.sleep(delay)
            return self._reset()
        if mode == "reset":
            return self._reset()
        if mode in ("500", "429", "400"):
            headers = {"Retry-After": "0"} if mode == "429" else None
            return self._json(int(mode), {"error": {"message": f"injected {mode}"}}, headers)
        if mode == "slow":
            time.sleep(delay)
        text = "cloud: " + last_user(body.get("messages"))
        if body.get("stream"):
            return self._stream(text, body.get("model", "fake"), broken=(mode == "sse_break"))
        self._json(200, {"id": "chatcmpl-fake", "object": "chat.completion", "model": body.get("model", "fake"),
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                      "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

    def _stream(self, text: str, model: str, broken: bool):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        # 3-character chunks, so placeholders like [EMAIL_1] arrive split across events.
        chunks = [text[i:i + 3] for i in range(0, len(text), 3)]
        for i, c in enumerate(chunks):
            if broken and i == 2:
                self.wfile.flush()
                return self._reset()
            ev = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model,
                  "choices": [{"index": 0, "delta": {"content": c}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(ev)}\n\n".encode())
            self.wfile.flush()
        end = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model,
               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # resets and hangs are on purpose


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    print(f"PORT {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
