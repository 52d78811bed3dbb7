"""Verifies X-Wsgate-Identity, the JWT wsgate sends with every proxied socket (PyJWT + JWKS).

Trust the identity only when it verifies: anyone who can reach the app directly can send
headers, and only wsgate holds the key that signs this token.
"""

import os
from dataclasses import dataclass

import jwt
from fastapi import WebSocket, WebSocketException, status

# Where wsgate publishes its keys, its issuer, and the audience it signs for this app: the
# upstream URL given to --proxy, without its query (or --proxy-audience).
WSGATE_URL = os.environ.get("GATE_URL", "http://127.0.0.1:8000")
WSGATE_ISSUER = os.environ.get("GATE_ISSUER", WSGATE_URL)
AUDIENCE = os.environ.get("IDENTITY_AUDIENCE", "ws://127.0.0.1:9000/secured-ws")

jwks = jwt.PyJWKClient(f"{WSGATE_URL}/.well-known/jwks.json", cache_keys=True)


@dataclass(frozen=True)
class Identity:
    sub: str  # the user at its identity provider
    name: str  # the name to show (as in X-Wsgate-User)
    idp: str  # the identity provider: wsgate itself or a trusted issuer
    sid: str  # the session; wsgate closes the socket when it ends
    scope: str


def verify_identity(token: str) -> Identity:
    if jwt.get_unverified_header(token).get("typ") != "wsgate-identity+jwt":
        raise jwt.InvalidTokenError("not a wsgate identity token")
    key = jwks.get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["EdDSA"],
        audience=AUDIENCE,
        issuer=WSGATE_ISSUER,
        options={"require": ["exp", "iat", "sub", "sid"]},
    )
    return Identity(claims["sub"], claims["name"], claims["idp"], claims["sid"], claims["scope"])


async def wsgate_identity(websocket: WebSocket) -> Identity:
    token = websocket.headers.get("x-wsgate-identity")
    try:
        return verify_identity(token or "")
    except (jwt.PyJWTError, KeyError) as err:
        raise WebSocketException(
            code=status.WS_1008_POLICY_VIOLATION, reason="Not from wsgate"
        ) from err
