"""PyJWT as the other side of tests/pyjwt_interop.rs.

Usage: pyjwt_peer.py COMMAND < request.json

  keygen {alg}                               -> {"private_pem": ..., "public_pem": ...}
  mint   {alg, key, kid?, claims}            -> the token
  verify {alg, key, token, issuer, audience} -> the claims, as JSON

`key` is the secret, base64, for HS256, and a PEM otherwise. A failure exits 1 with
the PyJWT exception's class name and message on stderr.
"""

import base64
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
    headers = {"kid": req["kid"]} if req.get("kid") is not None else None
    return jwt.encode(req["claims"], key_of(req), algorithm=req["alg"], headers=headers)


def verify(req):
    return jwt.decode(
        req["token"],
        key_of(req),
        algorithms=[req["alg"]],
        issuer=req["issuer"],
        audience=req["audience"],
        options={"require": ["exp", "iss", "aud"]},
    )


def main():
    command = {"keygen": keygen, "mint": mint, "verify": verify}[sys.argv[1]]
    try:
        result = command(json.load(sys.stdin))
    except Exception as e:  # noqa: BLE001 - the Rust side reads the class name
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    print(result if isinstance(result, str) else json.dumps(result))


if __name__ == "__main__":
    main()
