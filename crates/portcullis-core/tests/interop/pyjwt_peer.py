"""PyJWT as the other side of tests/pyjwt_interop.rs.

Usage: pyjwt_peer.py COMMAND < request.json

  keygen      {alg}                                -> {"private_pem": ..., "public_pem": ...}
  mint        {alg, key, kid?, headers?, claims}   -> the token
  verify      {alg, key, token, issuer, audience}  -> the claims, as JSON
  verify_jwks {jwks, token, issuer, audience}      -> {"header": ..., "claims": ...}
  hmac_hex    {key, message}                       -> HMAC-SHA256(key, message), hex

`key` is the secret, base64, for HS256, and a PEM otherwise. `claims` is an object or a
JSON text (whose member order is kept). `verify_jwks` takes the key named by the token's
`kid` from a JWKS document, as a service verifying through `/.well-known/jwks.json` does.
A failure exits 1 with the PyJWT exception's class name and message on stderr.
"""

import base64
import hashlib
import hmac
import json
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


def key_of(req):
    return base64.b64decode(req["key"]) if req["alg"] == "HS256" else req["key"]


def keygen(req):
    private = {
        "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
        "EdDSA": ed25519.Ed25519PrivateKey.generate,
    }[req["alg"]]()
    return {
        "private_pem": private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        "public_pem": private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    }


def mint(req):
    headers = dict(req.get("headers") or {})
    if req.get("kid") is not None:
        headers["kid"] = req["kid"]
    claims = req["claims"]
    if isinstance(claims, str):
        claims = json.loads(claims)
    return jwt.encode(claims, key_of(req), algorithm=req["alg"], headers=headers or None)


def verify(req):
    return jwt.decode(
        req["token"],
        key_of(req),
        algorithms=[req["alg"]],
        issuer=req["issuer"],
        audience=req["audience"],
        options={"require": ["exp", "iss", "aud"]},
    )


def verify_jwks(req):
    header = jwt.get_unverified_header(req["token"])
    key = jwt.PyJWKSet.from_dict(req["jwks"])[header["kid"]]
    claims = jwt.decode(
        req["token"],
        key,
        algorithms=[key.algorithm_name],
        issuer=req["issuer"],
        audience=req["audience"],
        options={"require": ["exp", "iss", "aud"]},
    )
    return {"header": header, "claims": claims}


def hmac_hex(req):
    return hmac.new(req["key"].encode(), req["message"].encode(), hashlib.sha256).hexdigest()


def main():
    command = {
        "keygen": keygen,
        "mint": mint,
        "verify": verify,
        "verify_jwks": verify_jwks,
        "hmac_hex": hmac_hex,
    }[sys.argv[1]]
    try:
        result = command(json.load(sys.stdin))
    except Exception as e:  # noqa: BLE001 - the Rust side reads the class name
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    print(result if isinstance(result, str) else json.dumps(result))


if __name__ == "__main__":
    main()
