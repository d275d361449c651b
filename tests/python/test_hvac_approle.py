"""hvac against strongroom: the AppRole auth method (roles, role IDs,
secret IDs and their accessors, login), with the exceptions hvac raises on
errors.

Point STRONGROOM_BIN at OpenBao's `bao` to check these tests against the
reference implementation.
"""

import hvac
import pytest


@pytest.fixture
def client(dev_server):
    c = hvac.Client(url=dev_server.addr, token=dev_server.token)
    c.sys.enable_auth_method("approle")
    return c


def fresh(dev_server):
    """A client with no token (none from the environment either), as an
    application starts out."""
    return hvac.Client(url=dev_server.addr, token="")


def test_enable_and_role_crud(client):
    assert "approle/" in client.sys.list_auth_methods()["data"]
    client.auth.approle.create_or_update_approle(
        "web",
        token_policies=["default", "web"],
        token_ttl="10m",
        token_max_ttl="30m",
        secret_id_num_uses=5,
        secret_id_ttl="1h",
        secret_id_bound_cidrs=["127.0.0.0/8"],
        token_bound_cidrs=["127.0.0.1/32"],
        token_num_uses=0,
        token_type="service",
    )
    data = client.auth.approle.read_role("web")["data"]
    assert data["token_policies"] == ["default", "web"]
    assert data["token_ttl"] == 600
    assert data["token_max_ttl"] == 1800
    assert data["secret_id_num_uses"] == 5
    assert data["secret_id_ttl"] == 3600
    assert data["secret_id_bound_cidrs"] == ["127.0.0.0/8"]
    assert data["token_bound_cidrs"] == ["127.0.0.1"]
    assert data["token_type"] == "service"
    assert data["local_secret_ids"] is False
    assert data["bind_secret_id"] is True

    # An update changes only what it names.
    client.auth.approle.create_or_update_approle("web", token_ttl="20m")
    data = client.auth.approle.read_role("web")["data"]
    assert data["token_ttl"] == 1200
    assert data["secret_id_num_uses"] == 5

    client.auth.approle.create_or_update_approle("api", token_policies=["a", "b"])
    assert client.auth.approle.read_role("api")["data"]["token_policies"] == ["a", "b"]
    assert client.auth.approle.list_roles()["data"]["keys"] == ["api", "web"]

    client.auth.approle.delete_role("api")
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.auth.approle.read_role("api")
    assert client.auth.approle.list_roles()["data"]["keys"] == ["web"]


def test_role_ids(client):
    client.auth.approle.create_or_update_approle("r1", token_policies=["default"])
    client.auth.approle.create_or_update_approle("r2", token_policies=["default"])
    generated = client.auth.approle.read_role_id("r1")["data"]["role_id"]
    assert len(generated) == 36
    assert client.auth.approle.read_role_id("r2")["data"]["role_id"] != generated

    client.auth.approle.update_role_id("r1", "custom-role-id")
    assert client.auth.approle.read_role_id("r1")["data"]["role_id"] == "custom-role-id"
    # Role ids are unique across roles (OpenBao answers 500).
    with pytest.raises(hvac.exceptions.VaultError) as err:
        client.auth.approle.update_role_id("r2", "custom-role-id")
    assert "role_id already in use" in str(err.value)
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.auth.approle.read_role_id("missing")


def test_secret_ids_and_accessors(client):
    client.auth.approle.create_or_update_approle(
        "app", secret_id_num_uses=3, secret_id_ttl="1h", token_policies=["default"]
    )
    made = client.auth.approle.generate_secret_id(
        "app", metadata={"team": "a"}, cidr_list=["127.0.0.1/32"]
    )["data"]
    secret_id, accessor = made["secret_id"], made["secret_id_accessor"]
    assert made["secret_id_num_uses"] == 3
    assert made["secret_id_ttl"] == 3600

    custom = client.auth.approle.create_custom_secret_id(
        "app", "my-custom-secret-id", metadata={"kind": "pushed"}
    )["data"]
    assert custom["secret_id"] == "my-custom-secret-id"
    custom_accessor = custom["secret_id_accessor"]

    keys = client.auth.approle.list_secret_id_accessors("app")["data"]["keys"]
    assert sorted(keys) == sorted([accessor, custom_accessor])

    props = client.auth.approle.read_secret_id("app", secret_id)["data"]
    assert props["secret_id_accessor"] == accessor
    assert props["metadata"] == {"team": "a"}
    assert props["cidr_list"] == ["127.0.0.1/32"]
    assert props["secret_id_num_uses"] == 3
    by_accessor = client.auth.approle.read_secret_id_accessor("app", accessor)["data"]
    assert by_accessor["metadata"] == {"team": "a"}
    assert "secret_id" not in by_accessor
    pushed = client.auth.approle.read_secret_id("app", "my-custom-secret-id")["data"]
    assert pushed["metadata"] == {"kind": "pushed"}

    client.auth.approle.destroy_secret_id("app", secret_id)
    keys = client.auth.approle.list_secret_id_accessors("app")["data"]["keys"]
    assert keys == [custom_accessor]
    # A destroyed secret id has nothing to show: 204, no JSON.
    gone = client.auth.approle.read_secret_id("app", secret_id)
    assert getattr(gone, "status_code", None) == 204

    client.auth.approle.destroy_secret_id_accessor("app", custom_accessor)
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.auth.approle.list_secret_id_accessors("app")
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.auth.approle.read_secret_id_accessor("app", custom_accessor)


def test_login_and_use_the_token(client, dev_server):
    client.sys.create_or_update_policy(
        name="reader", policy='path "secret/data/*" {\n  capabilities = ["read"]\n}\n'
    )
    client.secrets.kv.v2.create_or_update_secret("app", secret={"k": "v"}, mount_point="secret")
    client.auth.approle.create_or_update_approle(
        "app", token_policies=["reader"], token_ttl="15m", secret_id_num_uses=2
    )
    role_id = client.auth.approle.read_role_id("app")["data"]["role_id"]
    secret_id = client.auth.approle.generate_secret_id("app", metadata={"host": "h1"})["data"][
        "secret_id"
    ]

    app = fresh(dev_server)
    assert app.is_authenticated() is False
    auth = app.auth.approle.login(role_id=role_id, secret_id=secret_id)["auth"]
    assert auth["policies"] == ["default", "reader"]
    assert auth["token_policies"] == ["default", "reader"]
    assert auth["metadata"] == {"role_name": "app", "host": "h1"}
    assert auth["lease_duration"] == 900
    assert auth["renewable"] is True
    assert auth["token_type"] == "service"
    # hvac keeps the token and uses it from now on.
    assert app.token == auth["client_token"]
    assert app.is_authenticated()
    read = app.secrets.kv.v2.read_secret_version(
        "app", mount_point="secret", raise_on_deleted_version=True
    )
    assert read["data"]["data"] == {"k": "v"}
    with pytest.raises(hvac.exceptions.Forbidden):
        app.secrets.kv.v2.create_or_update_secret("app", secret={"k": "x"}, mount_point="secret")
    me = app.auth.token.lookup_self()["data"]
    assert me["path"] == "auth/approle/login"
    assert me["meta"] == {"role_name": "app", "host": "h1"}

    # use_token=False leaves the client as it was.
    other = fresh(dev_server)
    second = other.auth.approle.login(role_id=role_id, secret_id=secret_id, use_token=False)
    assert second["auth"]["client_token"]
    assert other.is_authenticated() is False

    # The secret id had two uses: the third login fails.
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        fresh(dev_server).auth.approle.login(role_id=role_id, secret_id=secret_id)
    assert "invalid role or secret ID" in str(err.value)


def test_errors_on_bad_input(client, dev_server):
    client.auth.approle.create_or_update_approle(
        "strict", secret_id_num_uses=2, secret_id_ttl="10m", token_policies=["default"]
    )
    role_id = client.auth.approle.read_role_id("strict")["data"]["role_id"]
    bad = [
        lambda: client.auth.approle.create_or_update_approle(
            "bad", token_ttl="2h", token_max_ttl="1h"
        ),
        lambda: client.auth.approle.create_or_update_approle("bad", secret_id_num_uses=-1),
        lambda: client.auth.approle.create_or_update_approle("bad", token_ttl="abc"),
        # local_secret_ids is fixed when the role is created.
        lambda: client.adapter.post(
            "/v1/auth/approle/role/strict", json={"local_secret_ids": True}
        ),
        lambda: client.adapter.post(
            "/v1/auth/approle/role/strict/secret-id", json={"metadata": "not json"}
        ),
        lambda: client.adapter.post(
            "/v1/auth/approle/role/strict/secret-id", json={"num_uses": 5}
        ),
        lambda: client.adapter.post("/v1/auth/approle/role/strict/secret-id", json={"ttl": "1h"}),
        lambda: fresh(dev_server).auth.approle.login(role_id=role_id, secret_id="wrong"),
        lambda: fresh(dev_server).auth.approle.login(role_id="no-such-role-id", secret_id="x"),
        lambda: fresh(dev_server).auth.approle.login(role_id=role_id),
    ]
    for call in bad:
        with pytest.raises(hvac.exceptions.InvalidRequest):
            call()
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.auth.approle.generate_secret_id("missing")
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.auth.approle.read_role("missing")
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.auth.approle.read_secret_id_accessor("strict", "no-such-accessor")
    # hvac itself refuses a bad token type and metadata that is not a dict.
    with pytest.raises(hvac.exceptions.ParamValidationError):
        client.auth.approle.create_or_update_approle("bad", token_type="bogus")
    with pytest.raises(hvac.exceptions.ParamValidationError):
        client.auth.approle.generate_secret_id("strict", metadata="team=a")
    # A token without policies for the role endpoints is refused.
    weak = client.auth.token.create(policies=["default"])["auth"]["client_token"]
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=dev_server.addr, token=weak).auth.approle.list_roles()


def test_wrapped_secret_id(client, dev_server):
    client.auth.approle.create_or_update_approle("w", token_policies=["default"])
    role_id = client.auth.approle.read_role_id("w")["data"]["role_id"]
    wrapped = client.auth.approle.generate_secret_id("w", wrap_ttl="2m")
    info = wrapped["wrap_info"]
    assert info["ttl"] == 120
    assert info["creation_path"] == "auth/approle/role/w/secret-id"
    # The application holds only the wrapping token and unwraps with it.
    holder = hvac.Client(url=dev_server.addr, token=info["token"])
    unwrapped = holder.sys.unwrap()["data"]
    app = fresh(dev_server)
    app.auth.approle.login(role_id=role_id, secret_id=unwrapped["secret_id"])
    assert app.is_authenticated()
