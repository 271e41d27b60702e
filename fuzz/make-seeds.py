#!/usr/bin/env python3
"""Writes the seed corpus: real tokens signed with the jwt target's SECRET, valid API keys and
request heads that carry them, so the fuzzer starts from inputs that get past the checks."""
import base64, hashlib, hmac, json, os, zlib

SECRET = b"portcullis-fuzz-secret-0123456789abcdef"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
NOW = 1_800_000_000
here = os.path.dirname(os.path.abspath(__file__))


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(header, claims, secret=SECRET):
    h = b64(json.dumps(header, separators=(",", ":")).encode())
    p = b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64(sig)}"


kid = "hs-" + hashlib.sha256(b"portcullis-kid:" + SECRET).hexdigest()[:16]
header = {"typ": "JWT", "alg": "HS256", "kid": kid}
reg = {"iss": "portcullis", "exp": NOW + 900, "iat": NOW, "jti": "j-1"}
access = jwt(header, {"sub": "u1", "email": "a@example.com", "role": "user", "org_id": "acme",
                      "type": "access", "sid": "s1", "aud": "portcullis-api", **reg})
refresh = jwt(header, {"sub": "u1", "type": "refresh", "sid": "s1", "rmb": False,
                       "aud": "portcullis-api", **reg})
agent = jwt(header, {"sub": "agent-1", "company_id": "acme", "adapter_type": "local",
                     "run_id": "r1", "aud": "portcullis-agents", **reg})
no_kid = jwt({"alg": "HS256", "typ": "JWT"}, {"sub": "u1", "type": "access", "aud": ["portcullis-api"],
                                              "role": "user", "org_id": "acme", "sid": "s1", **reg})
alg_none = b64(b'{"alg":"none"}') + "." + access.split(".")[1] + "."


def api_key(prefix="ck"):
    body = prefix + "_" + "".join(ALPHABET[(i * 7) % 62] for i in range(43))
    n = zlib.crc32(body.encode()) & 0xFFFFFFFF
    digits = []
    for _ in range(6):
        digits.append(ALPHABET[n % 62])
        n //= 62
    return body + "".join(reversed(digits))


seeds = {
    "jwt": {"access": access, "refresh": refresh, "agent": agent, "no-kid": no_kid, "alg-none": alg_none},
    "api_key": {"valid": api_key(), "custom-prefix": "sk\n" + api_key("sk"), "typo": api_key()[:-1] + "x"},
    "credentials": {
        "bearer": f"authorization: Bearer {access}",
        "api-key": f"x-api-key: {api_key()}",
        "cookie-post": f"POST\ncookie: portcullis_access={access}; portcullis_csrf=abc\nx-csrf-token: abc",
        "both": f"authorization: Bearer {api_key()}\nx-api-key: {api_key()}\ncookie: portcullis_access={access}",
    },
}
for target, files in seeds.items():
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(d, f"seed-{name}"), "w") as f:
            f.write(text)
print("seeds written under", os.path.join(here, "corpus"))
