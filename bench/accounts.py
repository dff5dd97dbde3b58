"""Sign-in and registration figures for scripts/bench-accounts, against a
running Kith on loopback: plain sign-ins beside two-step ones (password step,
then code step), and a registration flood from one address.

usage: accounts.py BASE_URL PASSWORD EMAILS_FILE
Prints one JSON object.
"""

import base64, hashlib, hmac, http.client, json, struct, sys, threading, time, urllib.parse, uuid

base, password, emails_file = sys.argv[1], sys.argv[2], sys.argv[3]
url = urllib.parse.urlparse(base)
emails = [line.strip() for line in open(emails_file) if line.strip()]


class Client:
    """One keep-alive connection, as a browser would hold."""

    def __init__(self):
        self.conn = http.client.HTTPConnection(url.hostname, url.port)

    def call(self, method, path, body=None, token=None):
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        payload = json.dumps(body) if body is not None else None
        for attempt in (1, 2):
            start = time.perf_counter()
            try:
                self.conn.request(method, path, payload, headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # The server closed an idle keep-alive connection: open a new one, untimed.
                self.conn.close()
                self.conn = http.client.HTTPConnection(url.hostname, url.port)
                if attempt == 2:
                    raise
        elapsed = (time.perf_counter() - start) * 1000
        return response.status, (json.loads(data) if data else None), elapsed


def totp(secret_b32, at):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = mac[19] & 15
    return f"{(struct.unpack('>I', mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def pct(values, p):
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * p))], 2)


def figures(values):
    return {"p50": pct(values, 0.5), "p99": pct(values, 0.99), "max": round(max(values), 2), "n": len(values)}


client = Client()
half = len(emails) // 2
plain, two_step = emails[:half], emails[half:]

# Turn on two-step sign-in for the second half, as each would from the profile.
secrets = {}
for email in two_step:
    status, tokens, _ = client.call("POST", "/api/v1/auth/login", {"email": email, "password": password})
    assert status == 200, (status, tokens)
    token = tokens["access_token"]
    status, enrolment, _ = client.call("POST", "/api/v1/me/second-factor", {"current_password": password}, token)
    assert status == 201, (status, enrolment)
    code = totp(enrolment["secret"], time.time())
    status, body, _ = client.call("POST", "/api/v1/me/second-factor/confirm", {"code": code}, token)
    assert status == 200, (status, body)
    secrets[email] = enrolment["secret"]
# Every enrolment spent the current step; codes from here on are of later steps.
time.sleep(31 - time.time() % 30)

plain_ms, password_step_ms, code_step_ms, two_step_ms = [], [], [], []
for round_ in range(2):
    for email in plain:
        status, _, ms = client.call("POST", "/api/v1/auth/login", {"email": email, "password": password})
        assert status == 200, status
        plain_ms.append(ms)
    step_started = int(time.time()) // 30
    for email in two_step:
        status, challenge, ms = client.call("POST", "/api/v1/auth/login", {"email": email, "password": password})
        assert status == 202, (status, challenge)
        password_step_ms.append(ms)
        code = totp(secrets[email], time.time())
        status, body, ms = client.call("POST", "/api/v1/auth/login/code", {"challenge": challenge["challenge"], "code": code})
        assert status == 200, (status, body)
        code_step_ms.append(ms)
        two_step_ms.append(password_step_ms[-1] + ms)
    # Each account's code works once per 30-second step.
    while int(time.time()) // 30 == step_started:
        time.sleep(0.2)

# What the client and loopback cost by themselves: the cheapest route.
health_ms = [client.call("GET", "/health")[2] for _ in range(200)]

# A registration flood from one address, 50 requests a second for 4 seconds:
# first alone, then again while a clinician keeps signing in beside it (the
# address's burst is spent by then, so all of the second are refused).
def flood(beside_sign_ins):
    c = Client()
    accepted, refused_ms, other = 0, [], []
    signing_in = {"ok": 0, "failed": 0}
    stop = threading.Event()

    def sign_in_beside():
        b = Client()
        while not stop.is_set():
            status, _, _ = b.call("POST", "/api/v1/auth/login", {"email": plain[0], "password": password})
            signing_in["ok" if status == 200 else "failed"] += 1

    beside = threading.Thread(target=sign_in_beside)
    if beside_sign_ins:
        beside.start()
    started = time.perf_counter()
    for i in range(200):
        time.sleep(max(0, started + i / 50 - time.perf_counter()))
        body = {"email": f"flood-{uuid.uuid4().hex[:12]}@example.net", "password": "a long enough passphrase here", "display_name": "Flood"}
        status, _, ms = c.call("POST", "/api/v1/auth/register", body)
        if status == 202:
            accepted += 1
        elif status == 429:
            refused_ms.append(ms)
        else:
            other.append(status)
    stop.set()
    if beside_sign_ins:
        beside.join()
    return {"sent": 200, "accepted": accepted, "refused": figures(refused_ms), "other": other, "sign_ins_beside": signing_in}


alone = flood(False)
with_sign_ins = flood(True)

print(json.dumps({
    "plain_sign_in": figures(plain_ms),
    "password_step": figures(password_step_ms),
    "code_step": figures(code_step_ms),
    "two_step": figures(two_step_ms),
    "health": figures(health_ms),
    "flood": alone,
    "flood_with_sign_ins": with_sign_ins,
}))
