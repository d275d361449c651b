"""hvac against strongroom: namespaces. hvac's namespace calls
(`sys.create_namespace`, `list_namespaces`, `delete_namespace`), and a
`hvac.Client(namespace=...)` doing KV version 2 and token calls inside a
namespace, scoped to it.

Point STRONGROOM_BIN at OpenBao's `bao` to check these tests against the
reference implementation.
"""

import time

import hvac
import pytest

# Deletion is asynchronous: poll (bounded) until the namespace is gone.
GONE_TRIES = 200
GONE_PAUSE = 0.025


@pytest.fixture
def client(dev_server):
    return hvac.Client(url=dev_server.addr, token=dev_server.token)


def in_ns(dev_server, namespace, token=None):
    return hvac.Client(
        url=dev_server.addr, token=token or dev_server.token, namespace=namespace
    )


def child_keys(c):
    return sorted(c.sys.list_namespaces()["data"]["keys"])


def wait_gone(c, name):
    for _ in range(GONE_TRIES):
        if name + "/" not in c.sys.list_namespaces()["data"]["keys"]:
            return
        time.sleep(GONE_PAUSE)
    pytest.fail(f"namespace {name} still listed after its deletion")


def test_create_list_delete(client, dev_server):
    data = client.sys.create_namespace("team-a")["data"]
    assert data["path"] == "team-a/"
    assert len(data["id"]) == 6
    assert data["custom_metadata"] == {}
    client.sys.create_namespace("team-b")

    listed = client.sys.list_namespaces()["data"]
    assert sorted(listed["keys"]) == ["team-a/", "team-b/"]
    assert listed["key_info"]["team-a/"]["id"] == data["id"]

    # A child, created and listed relative to its parent.
    team_a = in_ns(dev_server, "team-a")
    child = team_a.sys.create_namespace("child")["data"]
    assert child["path"] == "team-a/child/"
    assert child_keys(team_a) == ["child/"]

    # A namespace with children cannot be deleted.
    with pytest.raises(hvac.exceptions.VaultError) as refused:
        client.sys.delete_namespace("team-a")
    assert "unable to delete namespace containing child namespaces" in str(refused.value)
    assert "team-a/" in client.sys.list_namespaces()["data"]["keys"]

    deleted = team_a.sys.delete_namespace("child")
    assert deleted["data"] == {"status": "in-progress"}
    for _ in range(GONE_TRIES):
        try:
            team_a.sys.list_namespaces()
        except hvac.exceptions.InvalidPath:
            break
        time.sleep(GONE_PAUSE)
    else:
        pytest.fail("team-a/child still listed after its deletion")

    client.sys.delete_namespace("team-a")
    wait_gone(client, "team-a")
    assert child_keys(client) == ["team-b/"]


def test_reserved_and_invalid_names(client):
    for name in ["sys", "auth", "cubbyhole"]:
        with pytest.raises(hvac.exceptions.InvalidRequest) as refused:
            client.sys.create_namespace(name)
        assert "is a reserved path and cannot be used as a namespace name" in str(
            refused.value
        )
    with pytest.raises(hvac.exceptions.InvalidRequest) as refused:
        client.sys.create_namespace("a*")
    assert "wildcard characters" in str(refused.value)
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.sys.list_namespaces()


def test_client_in_a_namespace_kv2_and_tokens(client, dev_server):
    nsid = client.sys.create_namespace("team")["data"]["id"]
    client.sys.create_namespace("other")
    team = in_ns(dev_server, "team")
    team.sys.enable_secrets_engine("kv", path="kv", options={"version": "2"})
    assert "kv/" in team.sys.list_mounted_secrets_engines()["data"]
    assert "kv/" not in client.sys.list_mounted_secrets_engines()["data"]

    kv = team.secrets.kv.v2
    kv.create_or_update_secret("app", secret={"pw": "1"}, mount_point="kv")
    kv.create_or_update_secret("app", secret={"pw": "2"}, mount_point="kv")
    latest = kv.read_secret_version("app", mount_point="kv", raise_on_deleted_version=True)
    assert latest["data"]["data"] == {"pw": "2"}
    assert latest["data"]["metadata"]["version"] == 2
    assert kv.list_secrets("", mount_point="kv")["data"]["keys"] == ["app"]
    # The same secret through a path prefix from the root namespace.
    assert client.read("team/kv/data/app")["data"]["data"] == {"pw": "2"}

    team.sys.create_or_update_policy(
        "reader", 'path "kv/data/*" {\n  capabilities = ["read"]\n}\n'
    )
    assert "reader" in team.sys.list_policies()["data"]["policies"]
    assert "reader" not in client.sys.list_policies()["data"]["policies"]

    created = team.auth.token.create(policies=["reader"], ttl="1h")["auth"]
    token = created["client_token"]
    assert token.endswith("." + nsid)
    assert created["accessor"].endswith("." + nsid)
    assert created["policies"] == ["default", "reader"]

    mine = in_ns(dev_server, "team", token=token)
    me = mine.auth.token.lookup_self()["data"]
    assert me["namespace_path"] == "team/"
    assert me["policies"] == ["default", "reader"]
    assert team.auth.token.lookup(token)["data"]["namespace_path"] == "team/"
    read = mine.secrets.kv.v2.read_secret_version(
        "app", mount_point="kv", raise_on_deleted_version=True
    )
    assert read["data"]["data"] == {"pw": "2"}
    with pytest.raises(hvac.exceptions.Forbidden):
        mine.secrets.kv.v2.create_or_update_secret("app", secret={"pw": "3"}, mount_point="kv")

    # Not valid in the root namespace or in a sibling.
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=dev_server.addr, token=token).sys.list_mounted_secrets_engines()
    with pytest.raises(hvac.exceptions.Forbidden):
        in_ns(dev_server, "other", token=token).sys.list_mounted_secrets_engines()

    team.auth.token.revoke(token)
    with pytest.raises(hvac.exceptions.Forbidden):
        mine.auth.token.lookup_self()


def test_unknown_namespace(dev_server):
    nowhere = in_ns(dev_server, "nowhere")
    with pytest.raises(hvac.exceptions.InvalidPath) as missing:
        nowhere.sys.list_mounted_secrets_engines()
    assert "namespace not found" in str(missing.value)
