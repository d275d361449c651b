"""hvac against strongroom: tokens, policies, token roles, cubbyhole,
response wrapping and leases, with the exceptions hvac raises on errors.

Point STRONGROOM_BIN at OpenBao's `bao` to check these tests against the
reference implementation.
"""

import hvac
import pytest

READER = 'path "kv1/app/*" {\n  capabilities = ["read", "list"]\n}\n'


@pytest.fixture
def client(dev_server):
    return hvac.Client(url=dev_server.addr, token=dev_server.token)


def as_token(dev_server, token):
    return hvac.Client(url=dev_server.addr, token=token)


def test_token_create_lookup_renew_revoke(client, dev_server):
    created = client.auth.token.create(
        policies=["default"], ttl="1h", meta={"team": "a"}, display_name="py"
    )
    auth = created["auth"]
    assert auth["policies"] == ["default"]
    assert auth["lease_duration"] == 3600
    assert auth["renewable"] is True
    assert auth["metadata"] == {"team": "a"}
    token, accessor = auth["client_token"], auth["accessor"]

    data = client.auth.token.lookup(token)["data"]
    assert data["id"] == token
    assert data["accessor"] == accessor
    assert data["display_name"] == "token-py"
    assert data["meta"] == {"team": "a"}
    assert 0 < data["ttl"] <= 3600

    mine = as_token(dev_server, token)
    assert mine.is_authenticated()
    self_data = mine.auth.token.lookup_self()["data"]
    assert self_data["id"] == token
    assert self_data["policies"] == ["default"]

    by_accessor = client.auth.token.lookup_accessor(accessor)["data"]
    assert by_accessor["accessor"] == accessor
    assert by_accessor["id"] == ""
    assert accessor in client.auth.token.list_accessors()["data"]["keys"]

    renewed = client.auth.token.renew(token, increment="30m")
    assert renewed["auth"]["lease_duration"] == 1800
    assert mine.auth.token.renew_self(increment="20m")["auth"]["lease_duration"] == 1200

    client.auth.token.revoke(token)
    assert mine.is_authenticated() is False
    with pytest.raises(hvac.exceptions.Forbidden):
        mine.auth.token.lookup_self()


def test_token_tree_and_orphans(client, dev_server):
    client.sys.create_or_update_policy(
        name="creator",
        policy='path "auth/token/create*" {\n  capabilities = ["update"]\n}\n',
    )
    parent = client.auth.token.create(policies=["creator"])["auth"]["client_token"]
    as_parent = as_token(dev_server, parent)
    child = as_parent.auth.token.create(policies=["default"])["auth"]
    assert child["orphan"] is False
    orphan = as_parent.auth.token.create_orphan(policies=["default"])["auth"]
    assert orphan["orphan"] is True

    client.auth.token.revoke(parent)
    assert as_token(dev_server, child["client_token"]).is_authenticated() is False
    assert as_token(dev_server, orphan["client_token"]).is_authenticated() is True


def test_num_uses_and_token_errors(client, dev_server):
    token = client.auth.token.create(num_uses=2)["auth"]["client_token"]
    limited = as_token(dev_server, token)
    first = limited.auth.token.lookup_self()["data"]["num_uses"]
    second = limited.auth.token.lookup_self()["data"]["num_uses"]
    assert second < first
    with pytest.raises(hvac.exceptions.Forbidden):
        limited.auth.token.lookup_self()

    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.auth.token.create(ttl="abc")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.auth.token.create(num_uses=-1)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.auth.token.create(role_name="no-such-role")
    client.auth.token.create(id="py-custom-id")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.auth.token.create(id="py-custom-id")
    # A token with only the default policy may not create tokens.
    weak = client.auth.token.create(policies=["default"])["auth"]["client_token"]
    with pytest.raises(hvac.exceptions.Forbidden):
        as_token(dev_server, weak).auth.token.create(policies=["default"])
    with pytest.raises(hvac.exceptions.Forbidden):
        client.auth.token.lookup("not-a-token")


def test_batch_tokens(client, dev_server):
    auth = client.auth.token.create(type="batch", policies=["default"], ttl="1h")["auth"]
    assert auth["token_type"] == "batch"
    assert auth["accessor"] == ""
    batch = as_token(dev_server, auth["client_token"])
    assert batch.auth.token.lookup_self()["data"]["type"] == "batch"
    with pytest.raises(hvac.exceptions.InvalidRequest):
        batch.auth.token.renew_self()
    with pytest.raises(hvac.exceptions.InvalidRequest):
        batch.auth.token.revoke_self()
    with pytest.raises(hvac.exceptions.InvalidRequest):
        batch.write_data("cubbyhole/x", data={"a": "b"})
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.auth.token.create(type="batch", num_uses=2)


def test_policies(client, dev_server):
    client.sys.enable_secrets_engine(backend_type="kv", path="kv1", options={"version": "1"})
    client.secrets.kv.v1.create_or_update_secret(
        path="app/db", secret={"user": "admin"}, mount_point="kv1"
    )
    client.sys.create_or_update_policy(name="reader", policy=READER)
    assert client.sys.read_policy(name="reader")["data"]["rules"] == READER
    assert client.sys.list_policies()["data"]["policies"] == ["default", "reader", "root"]

    token = client.auth.token.create(policies=["reader"])["auth"]["client_token"]
    reader = as_token(dev_server, token)
    secret = reader.secrets.kv.v1.read_secret(path="app/db", mount_point="kv1")
    assert secret["data"] == {"user": "admin"}
    with pytest.raises(hvac.exceptions.Forbidden):
        reader.secrets.kv.v1.create_or_update_secret(
            path="app/db", secret={"user": "mallory"}, mount_point="kv1"
        )
    with pytest.raises(hvac.exceptions.Forbidden):
        reader.sys.list_policies()

    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.sys.create_or_update_policy(name="bad", policy='path "a" {')
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.sys.delete_policy(name="default")

    client.sys.delete_policy(name="reader")
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.sys.read_policy(name="reader")
    assert "reader" not in client.sys.list_policies()["data"]["policies"]
    # The deleted policy no longer grants anything to the live token.
    with pytest.raises(hvac.exceptions.Forbidden):
        reader.secrets.kv.v1.read_secret(path="app/db", mount_point="kv1")


def test_token_roles(client):
    client.sys.create_or_update_policy(name="app", policy=READER)
    client.auth.token.create_or_update_role(
        role_name="web", allowed_policies=["app"], orphan=True, token_period="1h"
    )
    role = client.auth.token.read_role("web")["data"]
    assert role["allowed_policies"] == ["app"]
    assert role["orphan"] is True
    assert role["token_period"] == 3600
    assert client.auth.token.list_roles()["data"]["keys"] == ["web"]

    auth = client.auth.token.create(role_name="web", policies=["app"])["auth"]
    assert auth["policies"] == ["app", "default"]
    assert auth["orphan"] is True
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.auth.token.create(role_name="web", policies=["other"])

    client.auth.token.delete_role("web")
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.auth.token.read_role("web")
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.auth.token.list_roles()


def test_cubbyhole_is_private(client, dev_server):
    one = as_token(dev_server, client.auth.token.create()["auth"]["client_token"])
    two = as_token(dev_server, client.auth.token.create()["auth"]["client_token"])
    one.write_data("cubbyhole/secret", data={"k": "v"})
    assert one.read("cubbyhole/secret")["data"] == {"k": "v"}
    assert one.list("cubbyhole/")["data"]["keys"] == ["secret"]
    # hvac answers None for a 404 read.
    assert two.read("cubbyhole/secret") is None
    assert client.read("cubbyhole/secret") is None
    one.delete("cubbyhole/secret")
    assert one.read("cubbyhole/secret") is None
    mounts = client.sys.list_mounted_secrets_engines()["data"]
    assert mounts["cubbyhole/"]["type"] == "cubbyhole"


def test_response_wrapping(client, dev_server):
    wrapped = client.auth.token.create(policies=["default"], wrap_ttl="5m")
    assert wrapped["auth"] is None
    info = wrapped["wrap_info"]
    assert info["ttl"] == 300
    assert info["creation_path"] == "auth/token/create"
    assert info["wrapped_accessor"]

    anonymous = hvac.Client(url=dev_server.addr)
    # hvac has no helper for sys/wrapping/lookup: its adapter posts it.
    looked_up = anonymous.adapter.post("/v1/sys/wrapping/lookup", json={"token": info["token"]})
    assert looked_up["data"]["creation_ttl"] == 300

    unwrapped = client.sys.unwrap(token=info["token"])
    token = unwrapped["auth"]["client_token"]
    assert unwrapped["auth"]["accessor"] == info["wrapped_accessor"]
    assert as_token(dev_server, token).is_authenticated()
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.sys.unwrap(token=info["token"])

    # Wrapping a KV read; unwrapping with the wrapping token as client token.
    client.sys.enable_secrets_engine(backend_type="kv", path="kv1", options={"version": "1"})
    client.write_data("kv1/s", data={"v": "x"})
    wrapped = client.read("kv1/s", wrap_ttl="2m")
    assert wrapped["wrap_info"]["ttl"] == 120
    holder = as_token(dev_server, wrapped["wrap_info"]["token"])
    assert holder.sys.unwrap()["data"] == {"v": "x"}

    # sys.wrap; a wrapping token is refused anywhere but sys/wrapping/*.
    wrapped = client.sys.wrap(payload={"a": "b"}, ttl="5m")
    assert wrapped["wrap_info"]["ttl"] == 300
    holder = as_token(dev_server, wrapped["wrap_info"]["token"])
    with pytest.raises(hvac.exceptions.Forbidden):
        holder.auth.token.lookup_self()
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.write_data("sys/wrapping/wrap", data={"a": "b"})


def test_leases(client, dev_server):
    prefix = "auth/token/create/"
    # The dev root token may have a lease there already (it does on OpenBao).
    before = _lease_keys(client, prefix)
    token = client.auth.token.create(ttl="1h")["auth"]["client_token"]
    new = [k for k in _lease_keys(client, prefix) if k not in before]
    assert len(new) == 1
    lease_id = prefix + new[0]

    lease = client.sys.read_lease(lease_id)["data"]
    assert lease["id"] == lease_id
    assert lease["renewable"] is True
    assert 0 < lease["ttl"] <= 3600
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.sys.renew_lease(lease_id)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.sys.read_lease("kv1/nope/abc")
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.sys.list_leases("nope/")

    client.sys.revoke_lease(lease_id)
    assert as_token(dev_server, token).is_authenticated() is False
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.sys.read_lease(lease_id)

    weak = client.auth.token.create(policies=["default"])["auth"]["client_token"]
    no_sudo = as_token(dev_server, weak)
    with pytest.raises(hvac.exceptions.Forbidden):
        no_sudo.sys.list_leases(prefix)


def _lease_keys(client, prefix):
    """The lease keys listed under `prefix` (none: hvac raises InvalidPath)."""
    try:
        return client.sys.list_leases(prefix)["data"]["keys"]
    except hvac.exceptions.InvalidPath:
        return []
