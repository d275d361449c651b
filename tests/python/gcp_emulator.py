"""A Google API emulator for the GCP auth method tests: a real HTTPS server
(its certificate issued by a test CA made here with `cryptography`) serving

- the OAuth2 token endpoint (`POST /token`), which checks the RS256 JWT
  assertion signed with the configured service-account key and hands out
  access tokens;
- the IAM service-account and key endpoints
  (`GET /v1/projects/-/serviceAccounts/<email or id>[/keys/<kid>]`), which
  demand one of those access tokens;
- the public certificate endpoint
  (`GET /service_accounts/v1/metadata/x509/<email>`), for keys Google holds
  (what `signJwt` signs with), which the IAM key endpoint does not know.

Service accounts and their keys are made by the tests; JWTs are signed here.
Every request is recorded in `requests`; `faults` makes one API answer a
canned status and body instead.
"""

import base64
import datetime
import ipaddress
import json
import secrets
import ssl
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def sign_jwt(key, kid, claims, alg="RS256"):
    """A compact RS256 JWS of `claims`, signed by `key`, header `kid`."""
    header = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(sig)}"


def decode_jwt(jwt):
    """(header, claims) of a compact JWS, without verifying it."""
    head, body, _ = jwt.split(".")
    return json.loads(b64url_decode(head)), json.loads(b64url_decode(body))


def verify_jwt(public_key, jwt):
    """True when `jwt` carries a valid RS256 signature by `public_key`."""
    try:
        signing_input, sig = jwt.rsplit(".", 1)
        public_key.verify(
            b64url_decode(sig), signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return True
    except (ValueError, InvalidSignature):
        return False


def _rfc3339(when):
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _cert(subject, issuer_name, public_key, signing_key, ca, san=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(signing_key, hashes.SHA256())


def _key_cert_pem(email, key):
    """A self-signed X.509 PEM certificate for a service-account key."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, email[:64])])
    cert = _cert(name, name, key.public_key(), key, False)
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class ServiceAccount:
    """A service account the emulator knows, with its IAM (user-managed)
    keys and the keys only Google holds (served as public certificates)."""

    def __init__(self, email, project, unique_id, disabled=False):
        self.email = email
        self.project = project
        self.unique_id = unique_id
        self.disabled = disabled
        self.iam_keys = {}  # kid -> (private key, certificate PEM)
        self.google_keys = {}  # kid -> (private key, certificate PEM)

    def add_iam_key(self):
        """A new user-managed key, known to the IAM key endpoint: (kid, key)."""
        kid = secrets.token_hex(20)
        key = new_rsa_key()
        self.iam_keys[kid] = (key, _key_cert_pem(self.email, key))
        return kid, key

    def add_google_key(self):
        """A new Google-held key, only on the public certificate endpoint."""
        kid = secrets.token_hex(20)
        key = new_rsa_key()
        self.google_keys[kid] = (key, _key_cert_pem(self.email, key))
        return kid, key

    def resource(self):
        """The IAM API's JSON for this account."""
        return {
            "name": f"projects/{self.project}/serviceAccounts/{self.email}",
            "projectId": self.project,
            "uniqueId": self.unique_id,
            "email": self.email,
            "displayName": self.email.split("@")[0],
            "etag": "MDEwMjE5MjA=",
            "oauth2ClientId": self.unique_id,
            "disabled": self.disabled,
        }


def _google_error(code, status, message):
    return {"error": {"code": code, "message": message, "status": status}}


class GoogleEmulator:
    """The emulated Google APIs over HTTPS on 127.0.0.1.

    `url` is the base of every API (pass it as `custom_endpoint` `api` and
    `iam`); `ca_file` is the PEM of the CA that issued its certificate;
    `credentials()` is the service-account key JSON Strongroom signs its
    OAuth2 assertions with (`token_uri` = `url` + "/token").
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []  # (method, path with query, Authorization header)
        self.assertions = []  # (header, claims) of accepted OAuth2 assertions
        self.access_tokens = set()
        self.accounts = {}  # email -> ServiceAccount
        self.faults = {}  # "token" | "iam" | "certs" -> (status, body bytes)
        self._next_id = 100000000000000000001

        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake google CA")])
        ca = _cert(ca_name, ca_name, ca_key.public_key(), ca_key, True)
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        leaf = _cert(leaf_name, ca_name, leaf_key.public_key(), ca_key, False, san=True)
        self._dir = tempfile.TemporaryDirectory()
        self.ca_file = f"{self._dir.name}/ca.pem"
        cert_file = f"{self._dir.name}/server.crt"
        key_file = f"{self._dir.name}/server.key"
        with open(self.ca_file, "wb") as f:
            f.write(ca.public_bytes(serialization.Encoding.PEM))
        with open(cert_file, "wb") as f:
            f.write(leaf.public_bytes(serialization.Encoding.PEM))
        with open(key_file, "wb") as f:
            f.write(
                leaf_key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.token_uri = f"{self.url}/token"

        # The account Strongroom authenticates to Google as.
        self.admin = self.add_account("strongroom@admin-project.iam.gserviceaccount.com", "admin-project")
        self.admin_kid, self.admin_key = self.admin.add_iam_key()

        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self._dir.cleanup()

    # --- test-facing helpers -------------------------------------------------

    def add_account(self, email, project, disabled=False):
        """A new service account with a fresh 21-digit unique id."""
        with self.lock:
            unique_id = str(self._next_id)
            self._next_id += 1
            account = ServiceAccount(email, project, unique_id, disabled)
            self.accounts[email] = account
        return account

    def credentials(self, key=None, kid=None):
        """The service-account key JSON for the admin account (or the same
        account with another key, which the token endpoint refuses)."""
        key = key or self.admin_key
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return json.dumps(
            {
                "type": "service_account",
                "project_id": self.admin.project,
                "private_key_id": kid or self.admin_kid,
                "private_key": pem,
                "client_email": self.admin.email,
                "client_id": self.admin.unique_id,
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": self.token_uri,
                "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                "client_x509_cert_url": f"{self.url}/robot/v1/metadata/x509/{self.admin.email}",
            }
        )

    def endpoints(self):
        """The `custom_endpoint` pointing Strongroom at this emulator."""
        return {"api": self.url, "iam": self.url}

    def paths(self, prefix):
        """The recorded request paths starting with `prefix`."""
        with self.lock:
            return [path for (_, path, _) in self.requests if path.startswith(prefix)]

    # --- the HTTP side -------------------------------------------------------

    def _find(self, ident):
        for account in self.accounts.values():
            if ident in (account.email, account.unique_id):
                return account
        return None

    def _token(self, form):
        """The OAuth2 token endpoint: (status, body)."""
        refuse = (400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        if form.get("grant_type") != [JWT_BEARER] or len(form.get("assertion", [])) != 1:
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}
        assertion = form["assertion"][0]
        try:
            header, claims = decode_jwt(assertion)
        except ValueError:
            return refuse
        keys = self.admin.iam_keys
        if header.get("alg") != "RS256" or header.get("kid") not in keys:
            return refuse
        if not verify_jwt(keys[header["kid"]][0].public_key(), assertion):
            return refuse
        now = time.time()
        if (
            claims.get("iss") != self.admin.email
            or claims.get("aud") != self.token_uri
            or claims.get("scope") != SCOPE
            or not isinstance(claims.get("exp"), (int, float))
            or claims["exp"] < now
        ):
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT claims."}
        access = "ya29." + secrets.token_urlsafe(32)
        with self.lock:
            self.access_tokens.add(access)
            self.assertions.append((header, claims))
        return 200, {"access_token": access, "expires_in": 3599, "token_type": "Bearer"}

    def _iam(self, rest, query, auth):
        """The IAM service-account and key endpoints: (status, body)."""
        bearer = auth[len("Bearer "):] if auth and auth.startswith("Bearer ") else None
        with self.lock:
            known = bearer in self.access_tokens
        if not known:
            return 401, _google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        parts = rest.split("/")
        account = self._find(parts[0])
        if account is None:
            return 404, _google_error(404, "NOT_FOUND", f"Unknown service account {parts[0]}")
        if len(parts) == 1:
            return 200, account.resource()
        if len(parts) == 3 and parts[1] == "keys":
            if query.get("publicKeyType") != ["TYPE_X509_PEM_FILE"]:
                return 400, _google_error(400, "INVALID_ARGUMENT", "publicKeyType must be TYPE_X509_PEM_FILE")
            entry = account.iam_keys.get(parts[2])
            if entry is None:
                return 404, _google_error(404, "NOT_FOUND", f"Unknown key {parts[2]}")
            now = datetime.datetime.now(datetime.timezone.utc)
            return 200, {
                "name": f"projects/{account.project}/serviceAccounts/{account.email}/keys/{parts[2]}",
                "validAfterTime": _rfc3339(now - datetime.timedelta(minutes=5)),
                "validBeforeTime": _rfc3339(now + datetime.timedelta(days=1)),
                "keyAlgorithm": "KEY_ALG_RSA_2048",
                "keyOrigin": "GOOGLE_PROVIDED",
                "keyType": "USER_MANAGED",
                "publicKeyData": base64.b64encode(entry[1].encode()).decode(),
            }
        return 404, _google_error(404, "NOT_FOUND", "no such method")

    def _handler(self):
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _record(self):
                with emulator.lock:
                    emulator.requests.append((self.command, self.path, self.headers.get("Authorization")))
                url = urllib.parse.urlsplit(self.path)
                return urllib.parse.unquote(url.path), urllib.parse.parse_qs(url.query)

            def _fault(self, kind):
                fault = emulator.faults.get(kind)
                if fault is None:
                    return False
                status, body = fault
                self._send(status, body, "application/json")
                return True

            def do_POST(self):
                path, _ = self._record()
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                if path != "/token":
                    return self._json(404, _google_error(404, "NOT_FOUND", "no such method"))
                if self._fault("token"):
                    return None
                return self._json(*emulator._token(urllib.parse.parse_qs(raw)))

            def do_GET(self):
                path, query = self._record()
                iam_prefix = "/v1/projects/-/serviceAccounts/"
                certs_prefix = "/service_accounts/v1/metadata/x509/"
                if path.startswith(iam_prefix):
                    if self._fault("iam"):
                        return None
                    return self._json(
                        *emulator._iam(path[len(iam_prefix):], query, self.headers.get("Authorization"))
                    )
                if path.startswith(certs_prefix):
                    if self._fault("certs"):
                        return None
                    account = emulator._find(path[len(certs_prefix):])
                    if account is None:
                        return self._json(404, _google_error(404, "NOT_FOUND", "unknown account"))
                    certs = {kid: pem for kid, (_, pem) in account.google_keys.items()}
                    return self._json(200, certs, {"Cache-Control": "public, max-age=3600"})
                return self._json(404, _google_error(404, "NOT_FOUND", "no such method"))

            def _json(self, status, obj, headers=None):
                self._send(status, json.dumps(obj).encode(), "application/json; charset=UTF-8", headers)

            def _send(self, status, data, content_type, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler
