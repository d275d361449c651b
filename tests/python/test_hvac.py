"""hvac, the Python Vault client, against strongroom."""

import hvac
import pytest


def test_initialize_and_unseal(config_server):
    client = hvac.Client(url=config_server.addr)
    assert client.sys.is_initialized() is False
    assert client.sys.is_sealed() is True

    result = client.sys.initialize(secret_shares=3, secret_threshold=2)
    assert len(result["keys"]) == 3
    assert len(result["keys_base64"]) == 3
    assert result["root_token"]
    assert client.sys.is_initialized() is True

    status = client.sys.submit_unseal_keys(result["keys"][:2])
    assert status["sealed"] is False
    assert client.sys.is_sealed() is False

    client.token = result["root_token"]
    assert client.is_authenticated()
    health = client.sys.read_health_status(method="GET")
    assert health["initialized"] is True
    assert health["sealed"] is False

    client.sys.seal()
    assert client.sys.is_sealed() is True
    client.sys.submit_unseal_key(result["keys_base64"][2])
    status = client.sys.submit_unseal_key(result["keys_base64"][0])
    assert status["sealed"] is False


def test_health_of_an_uninitialised_server(config_server):
    client = hvac.Client(url=config_server.addr)
    # 501 while uninitialised; hvac returns the raw response for it.
    resp = client.sys.read_health_status(method="GET")
    body = resp.json() if hasattr(resp, "json") else resp
    assert body["initialized"] is False


def test_secrets_engine_lifecycle(dev_server):
    client = hvac.Client(url=dev_server.addr, token=dev_server.token)
    client.sys.enable_secrets_engine(
        backend_type="kv", path="kv1", options={"version": "1"}, description="py"
    )
    mounts = client.sys.list_mounted_secrets_engines()["data"]
    assert mounts["kv1/"]["type"] == "kv"
    assert mounts["kv1/"]["options"]["version"] == "1"
    assert mounts["kv1/"]["description"] == "py"

    client.sys.tune_mount_configuration(path="kv1", default_lease_ttl="1h")
    tuned = client.sys.read_mount_configuration(path="kv1")["data"]
    assert tuned["default_lease_ttl"] == 3600

    client.sys.disable_secrets_engine(path="kv1")
    assert "kv1/" not in client.sys.list_mounted_secrets_engines()["data"]


def test_kv_v1_create_read_list_delete(dev_server):
    client = hvac.Client(url=dev_server.addr, token=dev_server.token)
    client.sys.enable_secrets_engine(backend_type="kv", path="kv1", options={"version": "1"})
    kv = client.secrets.kv.v1
    secret = {"user": "admin", "port": 5432, "tags": ["a", "b"], "nested": {"x": True}}
    kv.create_or_update_secret(path="app/db", secret=secret, mount_point="kv1")
    kv.create_or_update_secret(path="top", secret={"k": "v"}, mount_point="kv1")
    assert kv.read_secret(path="app/db", mount_point="kv1")["data"] == secret
    assert kv.list_secrets(path="", mount_point="kv1")["data"]["keys"] == ["app/", "top"]
    assert kv.list_secrets(path="app", mount_point="kv1")["data"]["keys"] == ["db"]

    kv.delete_secret(path="app/db", mount_point="kv1")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret(path="app/db", mount_point="kv1")


def test_errors_raise_hvac_exceptions(dev_server):
    client = hvac.Client(url=dev_server.addr, token=dev_server.token)
    client.sys.enable_secrets_engine(backend_type="kv", path="kv1", options={"version": "1"})
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.secrets.kv.v1.read_secret(path="missing", mount_point="kv1")
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.sys.enable_secrets_engine(backend_type="kv", path="kv1", options={"version": "1"})

    bad = hvac.Client(url=dev_server.addr, token="not-a-token")
    with pytest.raises(hvac.exceptions.Forbidden):
        bad.secrets.kv.v1.read_secret(path="anything", mount_point="kv1")
    assert bad.is_authenticated() is False
