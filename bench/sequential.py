"""Sends a fixed number of requests, one after another on one keep-alive
connection, so that a server run under callgrind does the same work for
either build: `sequential.py BASE KIND COUNT TOKENS IDS_OR_URLS [RECIPIENTS]`.
KIND is profile, search or create (a direct referral)."""
import http.client
import json
import random
import sys
from urllib.parse import urlparse

base, kind, count, tokens_file, items_file = sys.argv[1:6]
count = int(count)
tokens = [l.strip() for l in open(tokens_file) if l.strip()]
items = [l.strip() for l in open(items_file) if l.strip()]
recipients = [l.strip() for l in open(sys.argv[6]) if l.strip()] if len(sys.argv) > 6 else []
rng = random.Random(15)
url = urlparse(base)
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
bad = 0
for i in range(count):
    headers = {"Authorization": "Bearer " + tokens[i % len(tokens)]}
    if kind == "profile":
        conn.request("GET", "/api/v1/profiles/" + items[i % len(items)], headers=headers)
    elif kind == "search":
        conn.request("GET", items[i % len(items)], headers=headers)
    else:
        body = {
            "mode": "direct",
            "recipients": [recipients[rng.randrange(len(recipients))]],
            "packet": {"age_band": "adult", "state": "NY", "concerns": ["anxiety"], "urgency": "routine",
                       "note": "Benchmark referral."},
            "contact": {"full_name": "Bench Client", "phone": "+1 555 0100"},
        }
        headers["Content-Type"] = "application/json"
        conn.request("POST", "/api/v1/referrals", body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    response.read()
    if response.status >= 300:
        bad += 1
print(json.dumps({"requests": count, "not_ok": bad}))
