"""hvac against strongroom: the GCP auth method (config, roles, login) end to
end, with the Google APIs emulated over HTTPS by gcp_emulator.py (a test CA
the server trusts through SSL_CERT_FILE), reached through `custom_endpoint`
and the credentials' `token_uri`.
"""

import json
import time

import hvac
import pytest

from gcp_emulator import SCOPE, GoogleEmulator, new_rsa_key, sign_jwt

PROJECT = "proj-a"
APP = "app@proj-a.iam.gserviceaccount.com"


@pytest.fixture
def google():
    emulator = GoogleEmulator()
    yield emulator
    emulator.stop()


@pytest.fixture
def server(dev_server_with_env, google):
    return dev_server_with_env({"SSL_CERT_FILE": google.ca_file})


def configure(client, google, credentials=None):
    # hvac's auth.gcp.configure() cannot send `custom_endpoint`, so this
    # one call goes through the adapter.
    return client.adapter.post(
        "/v1/auth/gcp/config",
        json={
            "credentials": credentials or google.credentials(),
            "custom_endpoint": google.endpoints(),
        },
    )


@pytest.fixture
def client(server, google):
    c = hvac.Client(url=server.addr, token=server.token)
    c.sys.enable_auth_method("gcp")
    configure(c, google)
    return c


@pytest.fixture
def app(google):
    """The service account `app` in PROJECT, with one IAM key: (account, kid, key)."""
    account = google.add_account(APP, PROJECT)
    kid, key = account.add_iam_key()
    return account, kid, key


def claims(sub, role="app", exp_in=300, aud=None):
    now = int(time.time())
    return {"sub": sub, "aud": aud or f"vault/{role}", "iat": now, "exp": now + exp_in}


def anonymous(server):
    return hvac.Client(url=server.addr, token="")


def test_configure_read_and_delete_config(server, google):
    c = hvac.Client(url=server.addr, token=server.token)
    c.sys.enable_auth_method("gcp")
    assert "gcp/" in c.sys.list_auth_methods()["data"]

    c.auth.gcp.configure(credentials=google.credentials())
    data = c.auth.gcp.read_config()
    assert data["client_email"] == google.admin.email
    assert data["client_id"] == google.admin.unique_id
    assert data["private_key_id"] == google.admin_kid
    assert data["project_id"] == "admin-project"
    assert data["token_uri"] == google.token_uri
    assert "private_key" not in data
    assert "PRIVATE KEY" not in json.dumps(data)

    configure(c, google)
    assert c.auth.gcp.read_config()["custom_endpoint"] == google.endpoints()

    c.auth.gcp.delete_config()
    data = c.auth.gcp.read_config()
    assert not data.get("client_email")
    assert not data.get("private_key_id")
    assert "private_key" not in data

    # Credentials that are not a key JSON, or an unknown endpoint: refused.
    with pytest.raises(hvac.exceptions.InvalidRequest):
        c.auth.gcp.configure(credentials="{not json")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        c.adapter.post(
            "/v1/auth/gcp/config",
            json={"credentials": google.credentials(), "custom_endpoint": {"storage": google.url}},
        )
    assert not c.auth.gcp.read_config().get("client_email")


def test_role_crud(client):
    client.auth.gcp.create_role(
        "app",
        "iam",
        PROJECT,
        ttl="15m",
        max_ttl="1h",
        policies=["p1", "p2"],
        bound_service_accounts=[APP, "123456789012345678901"],
        max_jwt_exp=1200,
        allow_gce_inference=False,
    )
    data = client.auth.gcp.read_role("app")
    assert data["type"] == data["role_type"] == "iam"
    assert data["bound_projects"] == [PROJECT]
    assert data["project_id"] == PROJECT
    assert sorted(data["bound_service_accounts"]) == sorted([APP, "123456789012345678901"])
    assert sorted(data["service_accounts"]) == sorted(data["bound_service_accounts"])
    assert data["max_jwt_exp"] == 1200
    assert data["allow_gce_inference"] is False
    assert data["token_policies"] == data["policies"] == ["p1", "p2"]
    assert data["token_ttl"] == data["ttl"] == 900
    assert data["token_max_ttl"] == data["max_ttl"] == 3600

    client.auth.gcp.create_role("db", "iam", "proj-b", bound_service_accounts=["*"])
    db = client.auth.gcp.read_role("db")
    assert db["max_jwt_exp"] == 900
    assert db["allow_gce_inference"] is True
    assert db["bound_service_accounts"] == ["*"]
    assert client.auth.gcp.list_roles()["keys"] == ["app", "db"]

    client.auth.gcp.delete_role("db")
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.auth.gcp.read_role("db")
    assert client.auth.gcp.list_roles()["keys"] == ["app"]

    # An iam role without service accounts is refused and not stored.
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.auth.gcp.create_role("bad", "iam", PROJECT)
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.auth.gcp.read_role("bad")


def test_edit_service_accounts_on_iam_role(client):
    client.auth.gcp.create_role("app", "iam", PROJECT, bound_service_accounts=["a@x", "b@x"])
    client.auth.gcp.edit_service_accounts_on_iam_role("app", add=["c@x", "42"], remove=["a@x"])
    data = client.auth.gcp.read_role("app")
    assert sorted(data["bound_service_accounts"]) == ["42", "b@x", "c@x"]
    assert sorted(data["service_accounts"]) == ["42", "b@x", "c@x"]
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.auth.gcp.edit_service_accounts_on_iam_role("missing", add=["d@x"])


def test_login_self_signed_jwt(client, server, google, app):
    account, kid, key = app
    client.auth.gcp.create_role(
        "app",
        "iam",
        PROJECT,
        ttl="15m",
        policies=["default", "reader"],
        bound_service_accounts=[APP],
    )
    c = anonymous(server)
    auth = c.auth.gcp.login("app", sign_jwt(key, kid, claims(APP)))["auth"]
    assert auth["policies"] == ["default", "reader"]
    assert auth["lease_duration"] == 900
    assert auth["metadata"] == {
        "role": "app",
        "service_account_email": APP,
        "service_account_id": account.unique_id,
        "project_id": PROJECT,
    }
    # use_token=True: the client now holds the token, and it works.
    assert c.token == auth["client_token"]
    me = c.auth.token.lookup_self()["data"]
    assert me["path"] == "auth/gcp/login"
    assert me["meta"]["service_account_email"] == APP
    assert APP in me["display_name"]
    assert "reader" in me["policies"]

    # Strongroom authenticated to Google with an assertion signed by the
    # configured key (the emulator verified it) carrying the agreed claims,
    # and asked IAM for the key as an X.509 PEM.
    header, assertion = google.assertions[0]
    assert header["kid"] == google.admin_kid
    assert assertion["scope"] == SCOPE
    assert assertion["exp"] - assertion["iat"] == 3600
    assert any(p.endswith(f"/keys/{kid}?publicKeyType=TYPE_X509_PEM_FILE") for p in google.paths("/v1/"))


def test_login_unique_id_binding_and_google_held_key(client, server, google):
    # A key only the public certificate endpoint knows (as signJwt's are),
    # a role bound by unique id.
    account = google.add_account(APP, PROJECT)
    kid, key = account.add_google_key()
    client.auth.gcp.create_role("app", "iam", PROJECT, bound_service_accounts=[account.unique_id])
    auth = anonymous(server).auth.gcp.login("app", sign_jwt(key, kid, claims(APP)))["auth"]
    assert auth["metadata"]["service_account_id"] == account.unique_id
    assert google.paths(f"/service_accounts/v1/metadata/x509/{APP}")


def test_login_response_wrapping(client, server, app):
    _, kid, key = app
    client.auth.gcp.create_role("app", "iam", PROJECT, bound_service_accounts=[APP])
    c = anonymous(server)
    wrapped = c.adapter.post(
        "/v1/auth/gcp/login",
        json={"role": "app", "jwt": sign_jwt(key, kid, claims(APP))},
        headers={"X-Vault-Wrap-TTL": "60s"},
    )
    assert "auth" not in wrapped or wrapped["auth"] is None
    token = client.sys.unwrap(wrapped["wrap_info"]["token"])["auth"]["client_token"]
    assert hvac.Client(url=server.addr, token=token).auth.token.lookup_self()["data"]["meta"][
        "service_account_email"
    ] == APP


def _jwt_for(case, google, app):
    """The JWT of one refusal case, and a substring its error must carry."""
    account, kid, key = app
    if case == "wrong_aud":
        return sign_jwt(key, kid, claims(APP, aud="vault/other")), "aud"
    if case == "expired":
        return sign_jwt(key, kid, claims(APP, exp_in=-300)), "expired"
    if case == "too_long_lived":
        return sign_jwt(key, kid, claims(APP, exp_in=3000)), "expire within"
    if case == "other_key":
        return sign_jwt(new_rsa_key(), kid, claims(APP)), ""
    if case == "unknown_kid":
        return sign_jwt(key, "0" * 40, claims(APP)), "public key"
    if case == "no_kid":
        return sign_jwt(key, None, claims(APP)), ""
    if case == "not_in_role":
        other = google.add_account("other@proj-a.iam.gserviceaccount.com", PROJECT)
        other_kid, other_key = other.add_iam_key()
        return sign_jwt(other_key, other_kid, claims(other.email)), "not authorized"
    if case == "other_project":
        other = google.add_account("app@proj-b.iam.gserviceaccount.com", "proj-b")
        other_kid, other_key = other.add_iam_key()
        return sign_jwt(other_key, other_kid, claims(other.email)), "project"
    if case == "disabled":
        account.disabled = True
        return sign_jwt(key, kid, claims(APP)), ""
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "wrong_aud",
        "expired",
        "too_long_lived",
        "other_key",
        "unknown_kid",
        "no_kid",
        "not_in_role",
        "other_project",
        "disabled",
    ],
)
def test_login_refused(client, server, google, app, case):
    # `*`: any account of PROJECT (and app@proj-b's account is allowed by
    # name, so only its project keeps it out).
    client.auth.gcp.create_role(
        "app",
        "iam",
        PROJECT,
        bound_service_accounts=[APP, "app@proj-b.iam.gserviceaccount.com"],
    )
    jwt, message = _jwt_for(case, google, app)
    c = anonymous(server)
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        c.auth.gcp.login("app", jwt)
    assert message in str(err.value)
    assert not c.token


def test_login_refused_unknown_role_and_missing_fields(client, server, app):
    _, kid, key = app
    c = anonymous(server)
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        c.auth.gcp.login("nope", sign_jwt(key, kid, claims(APP, role="nope")))
    assert 'role "nope" not found' in str(err.value)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        c.auth.gcp.login("nope", "")
    assert not c.token


@pytest.mark.parametrize(
    "fault, answer, error, says",
    [
        (
            "iam",
            (403, b'{"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}}'),
            "InvalidRequest",
            "403",
        ),
        ("iam", (500, b'{"error":{"code":500,"message":"boom","status":"INTERNAL"}}'), "BadGateway", ""),
        ("iam", (200, b"<html>not json</html>"), "BadGateway", ""),
        ("token", (503, b"unavailable"), "BadGateway", ""),
        ("token", (200, b'{"nothing": true}'), "BadGateway", ""),
        ("certs", (500, b"boom"), "BadGateway", ""),
    ],
)
def test_google_failures(client, server, google, app, fault, answer, error, says):
    # 4xx from Google: the login cannot be confirmed (400); Google failing
    # itself: 502. Never a token, never a secret in the error.
    account, kid, key = app
    if fault == "certs":
        # A key IAM does not know: the certificate endpoint is asked.
        kid, key = account.add_google_key()
    client.auth.gcp.create_role("app", "iam", PROJECT, bound_service_accounts=[APP])
    google.faults[fault] = answer
    c = anonymous(server)
    jwt = sign_jwt(key, kid, claims(APP))
    with pytest.raises(getattr(hvac.exceptions, error)) as err:
        c.auth.gcp.login("app", jwt)
    text = str(err.value)
    assert says in text
    assert jwt not in text and "PRIVATE KEY" not in text
    assert not any(token in text for token in google.access_tokens)
    assert not c.token


def test_token_endpoint_refusing_the_assertion(client, server, google, app):
    # Credentials naming the admin key id but holding another key: Google
    # refuses the assertion, so the login cannot be confirmed (400).
    _, kid, key = app
    configure(client, google, credentials=google.credentials(key=new_rsa_key()))
    client.auth.gcp.create_role("app", "iam", PROJECT, bound_service_accounts=[APP])
    c = anonymous(server)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        c.auth.gcp.login("app", sign_jwt(key, kid, claims(APP)))
    assert google.paths("/token")
    assert not c.token
