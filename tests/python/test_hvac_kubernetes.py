"""hvac against strongroom: the Kubernetes auth method (config, roles,
login), with a fake Kubernetes API server in this file answering
TokenReviews over HTTPS (a test CA made with `cryptography`) for RS256
service-account JWTs signed here.

Point STRONGROOM_BIN at OpenBao's `bao` to check these tests against the
reference implementation.
"""

import base64
import datetime
import ipaddress
import json
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import hvac
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

REVIEWER = "hvac-reviewer-jwt"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """An RSA key signing RS256 service-account JWTs."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def sign(self, claims):
        head = b64url(json.dumps({"alg": "RS256", "kid": "test", "typ": "JWT"}).encode())
        body = b64url(json.dumps(claims).encode())
        signing_input = f"{head}.{body}".encode()
        sig = self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{head}.{body}.{b64url(sig)}"

    def verifies(self, jwt):
        try:
            signing_input, sig = jwt.rsplit(".", 1)
            self.key.public_key().verify(
                b64url_decode(sig), signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            return True
        except (ValueError, InvalidSignature):
            return False


def legacy_claims(ns, name):
    """The claims of a legacy (secret-based) service-account token."""
    return {
        "iss": "kubernetes/serviceaccount",
        "kubernetes.io/serviceaccount/namespace": ns,
        "kubernetes.io/serviceaccount/secret.name": f"{name}-token-abcde",
        "kubernetes.io/serviceaccount/service-account.name": name,
        "kubernetes.io/serviceaccount/service-account.uid": f"uid-{ns}-{name}",
        "sub": f"system:serviceaccount:{ns}:{name}",
    }


def _cert(subject, issuer_name, public_key, signing_key, ca):
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
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(signing_key, hashes.SHA256())


class FakeKube:
    """A fake Kubernetes API server answering TokenReviews over HTTPS."""

    def __init__(self, signer):
        self.signer = signer
        self.seen = []
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake kubernetes CA")])
        ca = _cert(ca_name, ca_name, ca_key.public_key(), ca_key, True)
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        leaf = _cert(leaf_name, ca_name, leaf_key.public_key(), ca_key, False)
        self.ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
        self._dir = tempfile.TemporaryDirectory()
        cert_file = f"{self._dir.name}/apiserver.crt"
        key_file = f"{self._dir.name}/apiserver.key"
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
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                auth = self.headers.get("Authorization")
                fake.seen.append((auth, body))
                if self.path != "/apis/authentication.k8s.io/v1/tokenreviews":
                    return self._answer(404, {"kind": "Status", "code": 404})
                if auth != f"Bearer {REVIEWER}":
                    return self._answer(401, {"kind": "Status", "code": 401})
                token = body["spec"]["token"]
                status = {"authenticated": False, "user": {}}
                if fake.signer.verifies(token):
                    claims = json.loads(b64url_decode(token.split(".")[1]))
                    ns = claims["kubernetes.io/serviceaccount/namespace"]
                    name = claims["kubernetes.io/serviceaccount/service-account.name"]
                    status = {
                        "authenticated": True,
                        "user": {
                            "username": f"system:serviceaccount:{ns}:{name}",
                            "uid": claims["kubernetes.io/serviceaccount/service-account.uid"],
                            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}"],
                        },
                    }
                else:
                    status["error"] = "[invalid bearer token]"
                self._answer(
                    201,
                    {
                        "kind": "TokenReview",
                        "apiVersion": "authentication.k8s.io/v1",
                        "spec": body["spec"],
                        "status": status,
                    },
                )

            def _answer(self, code, obj):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self._dir.cleanup()


@pytest.fixture
def signer():
    return Signer()


@pytest.fixture
def fake_kube(signer):
    kube = FakeKube(signer)
    yield kube
    kube.stop()


@pytest.fixture
def client(dev_server, fake_kube):
    c = hvac.Client(url=dev_server.addr, token=dev_server.token)
    c.sys.enable_auth_method("kubernetes")
    c.auth.kubernetes.configure(
        kubernetes_host=fake_kube.url,
        kubernetes_ca_cert=fake_kube.ca_pem,
        token_reviewer_jwt=REVIEWER,
    )
    return c


def test_configure_and_read_config(client, fake_kube):
    assert "kubernetes/" in client.sys.list_auth_methods()["data"]
    data = client.auth.kubernetes.read_config()
    assert data["kubernetes_host"] == fake_kube.url
    assert data["kubernetes_ca_cert"] == fake_kube.ca_pem
    assert "token_reviewer_jwt" not in data
    assert REVIEWER not in json.dumps(data)


def test_role_crud(client):
    client.auth.kubernetes.create_role(
        "app",
        bound_service_account_names=["app", "web"],
        bound_service_account_namespaces="default,prod",
        policies=["p1", "p2"],
        ttl="1h",
        max_ttl="2h",
        audience="vault",
        alias_name_source="serviceaccount_name",
    )
    data = client.auth.kubernetes.read_role("app")
    assert data["bound_service_account_names"] == ["app", "web"]
    assert data["bound_service_account_namespaces"] == ["default", "prod"]
    assert data["token_policies"] == ["p1", "p2"]
    assert data["token_ttl"] == 3600
    assert data["token_max_ttl"] == 7200
    assert data["audience"] == "vault"
    assert data["alias_name_source"] == "serviceaccount_name"

    client.auth.kubernetes.create_role(
        "db", bound_service_account_names="db", bound_service_account_namespaces="data"
    )
    assert client.auth.kubernetes.list_roles()["keys"] == ["app", "db"]
    client.auth.kubernetes.delete_role("db")
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.auth.kubernetes.read_role("db")
    assert client.auth.kubernetes.list_roles()["keys"] == ["app"]

    # No namespaces on a new role: refused, nothing stored.
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        client.auth.kubernetes.create_role(
            "bad", bound_service_account_names="a", bound_service_account_namespaces=[]
        )
    assert "bound_service_account_namespaces" in str(err.value)
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.auth.kubernetes.read_role("bad")


def test_login_and_use_the_token(client, dev_server, fake_kube, signer):
    client.auth.kubernetes.create_role(
        "app",
        bound_service_account_names="app",
        bound_service_account_namespaces="prod",
        policies=["default", "reader"],
        ttl="15m",
    )
    app = hvac.Client(url=dev_server.addr, token="")
    jwt = signer.sign(legacy_claims("prod", "app"))
    auth = app.auth.kubernetes.login("app", jwt)["auth"]
    assert auth["policies"] == ["default", "reader"]
    assert auth["lease_duration"] == 900
    assert auth["metadata"] == {
        "role": "app",
        "service_account_name": "app",
        "service_account_namespace": "prod",
        "service_account_secret_name": "app-token-abcde",
        "service_account_uid": "uid-prod-app",
    }
    # use_token=True: the client now holds the token, and it works.
    assert app.token == auth["client_token"]
    me = app.auth.token.lookup_self()["data"]
    assert me["path"] == "auth/kubernetes/login"
    assert me["meta"]["service_account_name"] == "app"
    # Kubernetes was asked, with the reviewer JWT.
    assert fake_kube.seen[-1][0] == f"Bearer {REVIEWER}"
    assert fake_kube.seen[-1][1]["spec"]["token"] == jwt


def test_login_refusals(client, dev_server, signer):
    client.auth.kubernetes.create_role(
        "app", bound_service_account_names="app", bound_service_account_namespaces="prod"
    )
    app = hvac.Client(url=dev_server.addr, token="")
    with pytest.raises(hvac.exceptions.Forbidden) as err:
        app.auth.kubernetes.login("app", signer.sign(legacy_claims("dev", "app")))
    assert "namespace not authorized" in str(err.value)
    with pytest.raises(hvac.exceptions.Forbidden):
        app.auth.kubernetes.login("app", Signer().sign(legacy_claims("prod", "app")))
    with pytest.raises(hvac.exceptions.VaultError):
        app.auth.kubernetes.login("app", "not-a-jwt")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        app.auth.kubernetes.login("nope", signer.sign(legacy_claims("prod", "app")))
    assert not app.token
