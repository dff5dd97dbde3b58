#!/usr/bin/env python3
"""Measures how long a profile change takes to become searchable: edits the
bio to carry a new unique word, then polls search until it finds it."""
import json, random, string, sys, time, urllib.request

base, email, password, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def call(method, path, token=None, body=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")

token = call("POST", "/api/v1/auth/login", body={"email": email, "password": password})["access_token"]
latencies = []
for i in range(rounds):
    profile = call("GET", "/api/v1/profiles/me", token)
    word = "zq" + "".join(random.choice(string.ascii_lowercase) for _ in range(10))
    edit = {k: profile[k] for k in ["credentials", "license_states", "license_number", "specialties", "modalities",
                                    "populations", "languages", "insurance", "fee_min", "fee_max", "sliding_scale",
                                    "telehealth", "in_person", "city", "state", "postal_code", "latitude", "longitude",
                                    "accepting_referrals"]}
    edit["version"] = profile["version"]
    edit["bio"] = f"Bio revision {word}."
    call("PUT", "/api/v1/profiles/me", token, edit)
    start = time.perf_counter()
    while call("GET", f"/api/v1/search/clinicians?q={word}", token)["total"] == 0:
        time.sleep(0.002)
        if time.perf_counter() - start > 10:
            sys.exit("change never became searchable")
    latencies.append((time.perf_counter() - start) * 1000)
latencies.sort()
pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
print(f"{pick(0.5):.0f} {pick(0.99):.0f} {max(latencies):.0f}")
