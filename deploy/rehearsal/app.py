"""The downstream app of the sidecar rehearsal: a plain HTTP server on loopback
that verifies countersign's Standard Webhooks signature on every delivery,
appends the event (webhook-id, kind, envelope) to a file, and answers 200.
A bad or missing signature gets 401. DELAY_MS slows every answer down; each
delivery's webhook-id is appended to OUT_FILE.arrived as it arrives (before the
delay), so the rehearsal can tell when a delivery is in flight.

Usage: python3 app.py PORT WHSEC OUT_FILE
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, WHSEC, OUT = int(sys.argv[1]), sys.argv[2], sys.argv[3]
KEY = base64.b64decode(WHSEC.removeprefix("whsec_"))
DELAY = int(os.environ.get("DELAY_MS", "0")) / 1000


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        msg_id = self.headers.get("webhook-id", "")
        ts = self.headers.get("webhook-timestamp", "")
        signed = f"{msg_id}.{ts}.".encode() + body
        expected = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
        given = [s.split(",", 1)[1] for s in self.headers.get("webhook-signature", "").split() if "," in s]
        if not any(hmac.compare_digest(expected, g) for g in given):
            self.send_response(401)
            self.end_headers()
            return
        with open(OUT + ".arrived", "a") as f:
            f.write(msg_id + "\n")
        time.sleep(DELAY)
        event = json.loads(body)
        with open(OUT, "a") as f:
            f.write(json.dumps({"webhook_id": msg_id, "kind": event.get("kind"),
                                "envelope": event.get("envelope_id")}) + "\n")
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
