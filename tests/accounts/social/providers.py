"""A local stand-in for Google, Facebook and LINE Login, speaking their wire formats.

One HTTP server (tests/credits/gateway.py) on the address the test settings point every
provider endpoint at (SOCIAL_STANDIN_URL). It serves:

- Google: the signing certificates as `/oauth2/v1/certs` does ({kid: PEM certificate}), and
  RS256 ID tokens signed with the matching key (`google_id_token`).
- Facebook: the Graph API calls allauth makes for an access token — the app token
  (`/oauth/access_token`, client credentials), `/debug_token`, `/me` — each checking its
  query string (app id, secret, appsecret_proof) as Facebook does.
- LINE Login: its OpenID Connect discovery document, its JWKS (an EC P-256 key, as LINE's
  `/oauth2/v2.1/certs`) and ES256 ID tokens (`line_id_token`), as the LINE SDK and LIFF hand to
  a frontend.
"""

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from django.conf import settings

from tests.credits.gateway import Gateway

GOOGLE_ISSUER = "https://accounts.google.com"
LINE_ISSUER = "https://access.line.me"
GOOGLE_KID = "google-kid-1"
LINE_KID = "line-kid-1"
FACEBOOK_APP_TOKEN = "1234567890|app-token"


def _b64url(number: int, size: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes(size, "big")).rstrip(b"=").decode()


class Keys:
    """Signing keys made once per test session (RSA generation is slow)."""

    def __init__(self):
        self.google = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.line = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "accounts.google.com")])
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.google.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(self.google, hashes.SHA256())
        )
        self.google_certs = {GOOGLE_KID: certificate.public_bytes(serialization.Encoding.PEM).decode()}
        numbers = self.line.public_key().public_numbers()
        self.line_jwks = {
            "keys": [
                {
                    "kty": "EC",
                    "alg": "ES256",
                    "use": "sig",
                    "kid": LINE_KID,
                    "crv": "P-256",
                    "x": _b64url(numbers.x, 32),
                    "y": _b64url(numbers.y, 32),
                }
            ]
        }

    def pem(self, key) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def google_id_token(keys: Keys, *, email: str, verified: bool = True, signing_key=None, **overrides) -> str:
    now = int(time.time())
    claims = {
        "iss": GOOGLE_ISSUER,
        "azp": settings.SOCIAL_GOOGLE_CLIENT_ID,
        "aud": settings.SOCIAL_GOOGLE_CLIENT_ID,
        "sub": "1100" + hashlib.sha256(email.encode()).hexdigest()[:17],
        "email": email,
        "email_verified": verified,
        "name": "Somchai Google",
        "given_name": "Somchai",
        "family_name": "Google",
        "iat": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return jwt.encode(
        claims, keys.pem(signing_key or keys.google), algorithm="RS256", headers={"kid": GOOGLE_KID}
    )


def line_id_token(keys: Keys, *, email: str | None, **overrides) -> str:
    now = int(time.time())
    claims = {
        "iss": LINE_ISSUER,
        "sub": "U" + hashlib.sha256((email or "no-email").encode()).hexdigest()[:32],
        "aud": settings.SOCIAL_LINE_CHANNEL_ID,
        "exp": now + 3600,
        "iat": now,
        "amr": ["linesso"],
        "name": "Malee LINE",
        "picture": "https://profile.line-scdn.net/abc",
    }
    if email:
        claims["email"] = email  # LINE never says whether it verified the address
    claims.update(overrides)
    return jwt.encode(claims, keys.pem(keys.line), algorithm="ES256", headers={"kid": LINE_KID, "typ": "JWT"})


class ProviderStandIn:
    """The stand-in server; `requests` records every call, `routes` can be replaced per test."""

    def __init__(self, keys: Keys):
        self.keys = keys
        self.port = urlsplit(settings.SOCIAL_STANDIN_URL).port
        self.gateway = Gateway(port=self.port)
        self.facebook_users: dict[str, dict] = {}  # user access token -> Graph /me fields
        self.reset()

    @property
    def requests(self):
        return self.gateway.requests

    def reset(self):
        self.gateway.requests.clear()
        self.gateway.routes.clear()
        self.facebook_users.clear()
        graph = urlsplit(settings.SOCIALACCOUNT_PROVIDERS["facebook"]["GRAPH_API_URL"]).path
        self.route("GET", "/google/oauth2/v1/certs", lambda request: (200, self.keys.google_certs))
        self.route(
            "GET", "/line/.well-known/openid-configuration", lambda request: (200, self.line_discovery())
        )
        self.route("GET", "/line/oauth2/v2.1/certs", lambda request: (200, self.keys.line_jwks))
        self.route("GET", f"{graph}/oauth/access_token", self.facebook_app_token)
        self.route("GET", f"{graph}/debug_token", self.facebook_debug_token)
        self.route("GET", f"{graph}/me", self.facebook_me)

    def route(self, method, path, answer):
        self.gateway.route(method, path, answer)

    def stop(self):
        self.gateway.stop()

    def line_discovery(self) -> dict:
        base = f"{settings.SOCIAL_STANDIN_URL}/line"
        return {
            "issuer": LINE_ISSUER,
            "authorization_endpoint": f"{base}/oauth2/v2.1/authorize",
            "token_endpoint": f"{base}/oauth2/v2.1/token",
            "revocation_endpoint": f"{base}/oauth2/v2.1/revoke",
            "userinfo_endpoint": f"{base}/oauth2/v2.1/userinfo",
            "scopes_supported": ["openid", "email", "profile"],
            "jwks_uri": f"{base}/oauth2/v2.1/certs",
            "response_types_supported": ["code"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "code_challenge_methods_supported": ["S256"],
        }

    # Facebook's Graph API -------------------------------------------------------------------

    @staticmethod
    def query(request) -> dict:
        return {k: v[0] for k, v in parse_qs(urlsplit(request.path).query).items()}

    @staticmethod
    def graph_error(status: int, message: str, code: int = 190) -> tuple[int, dict]:
        return status, {
            "error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "Ab1"}
        }

    def facebook_app_token(self, request):
        q = self.query(request)
        if (
            q.get("grant_type") != "client_credentials"
            or q.get("client_id") != settings.SOCIAL_FACEBOOK_APP_ID
            or q.get("client_secret") != settings.SOCIAL_FACEBOOK_APP_SECRET
        ):
            return self.graph_error(400, "Error validating client secret.", code=1)
        return 200, {"access_token": FACEBOOK_APP_TOKEN, "token_type": "bearer"}

    def facebook_debug_token(self, request):
        q = self.query(request)
        if q.get("access_token") != FACEBOOK_APP_TOKEN:
            return self.graph_error(400, "Invalid OAuth access token - Cannot parse access token")
        user = self.facebook_users.get(q.get("input_token", ""))
        if user is None:
            return 200, {
                "data": {
                    "error": {"code": 190, "message": "Invalid OAuth access token."},
                    "is_valid": False,
                    "scopes": [],
                }
            }
        return 200, {
            "data": {
                "app_id": user.get("app_id", settings.SOCIAL_FACEBOOK_APP_ID),
                "type": "USER",
                "application": "Platform",
                "data_access_expires_at": int(time.time()) + 90 * 86400,
                "expires_at": int(time.time()) + 3600,
                "is_valid": True,
                "scopes": ["email", "public_profile"],
                "user_id": user["id"],
            }
        }

    def facebook_me(self, request):
        q = self.query(request)
        token = q.get("access_token", "")
        user = self.facebook_users.get(token)
        if user is None:
            return self.graph_error(400, "Invalid OAuth access token - Cannot parse access token")
        proof = hmac.new(
            settings.SOCIAL_FACEBOOK_APP_SECRET.encode(), token.encode(), hashlib.sha256
        ).hexdigest()
        if q.get("appsecret_proof") != proof:
            return self.graph_error(400, "Invalid appsecret_proof provided in the API argument", code=100)
        fields = q.get("fields", "").split(",")
        return 200, {k: v for k, v in user.items() if k in fields}

    def facebook_user(self, token: str, *, email: str | None, name: str = "Niran Facebook", **extra) -> None:
        user = {"id": str(int(hashlib.sha256(token.encode()).hexdigest()[:12], 16)), "name": name, **extra}
        user.setdefault("first_name", name.split()[0])
        user.setdefault("last_name", name.split()[-1])
        if email:
            user["email"] = email
        self.facebook_users[token] = user


def jwt_payload(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


TOKEN_URL = "/_allauth/app/v1/auth/provider/token"


def sign_in(client, provider: str, token: dict, **extra):
    """POST the provider token as a SPA or mobile app does (allauth's headless app client)."""
    body = {"provider": provider, "process": "login", "token": token}
    return client.post(TOKEN_URL, body, format="json", **extra)


def google_token(keys: Keys, **claims) -> dict:
    return {"client_id": settings.SOCIAL_GOOGLE_CLIENT_ID, "id_token": google_id_token(keys, **claims)}


def line_token(keys: Keys, **claims) -> dict:
    return {"client_id": settings.SOCIAL_LINE_CHANNEL_ID, "id_token": line_id_token(keys, **claims)}


def facebook_token(access_token: str) -> dict:
    return {"client_id": settings.SOCIAL_FACEBOOK_APP_ID, "access_token": access_token}
