"""Sends COUNT signed DocuSign Connect webhooks to countersign, each signed by
`countersign sign` for the source, and checks every answer is 200.

Usage: python3 send.py COUNTERSIGN_BIN CONFIG SOURCE BASE_URL COUNT PREFIX
"""

import json
import subprocess
import sys
import urllib.request

cs, config, source, base, count, prefix = sys.argv[1:7]
for i in range(int(count)):
    body = json.dumps({"event": "envelope-completed", "apiVersion": "v2.1", "retryCount": 0,
                       "generatedDateTime": f"2026-11-23T12:00:{i:02d}.000Z",
                       "data": {"envelopeId": f"{prefix}-{i:03d}"}})
    signed = json.loads(subprocess.run(
        [cs, "sign", "--config", config, "--source", source, "--data", body, "--url", base, "--format", "json"],
        check=True, capture_output=True).stdout)
    req = urllib.request.Request(signed["url"], data=signed["body"].encode(), method="POST",
                                 headers=dict(signed["headers"]))
    with urllib.request.urlopen(req, timeout=10) as resp:
        if resp.status != 200:
            sys.exit(f"webhook {i}: answered {resp.status}")
print(f"sent {count} webhooks, every one answered 200")
