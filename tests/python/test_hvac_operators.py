"""hvac's operator calls: rekeying (start_rekey/rekey/rekey_verify) and
root token generation (start_root_token_generation/generate_root), over the
unauthenticated endpoints a listener enables.

Point STRONGROOM_BIN at OpenBao's `bao` to check these tests against the
reference implementation.
"""

import base64
import time

import hvac
import pytest


def _init(server, shares, threshold):
    client = hvac.Client(url=server.addr)
    result = client.sys.initialize(secret_shares=shares, secret_threshold=threshold)
    client.sys.submit_unseal_keys(result["keys"][:threshold])
    client.token = result["root_token"]
    return client, result


def _decode(encoded, otp):
    raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    return bytes(a ^ b for a, b in zip(raw, otp.encode())).decode()


def test_rekey_replaces_the_unseal_shares(operator_server):
    client, init = _init(operator_server, 3, 2)
    anonymous = hvac.Client(url=operator_server.addr)

    progress = anonymous.sys.read_rekey_progress()
    assert progress["started"] is False
    assert progress["required"] == 2

    started = anonymous.sys.start_rekey(secret_shares=5, secret_threshold=3)
    assert started["started"] is True
    assert (started["t"], started["n"]) == (3, 5)
    nonce = started["nonce"]

    with pytest.raises(hvac.exceptions.InvalidRequest, match="incorrect nonce"):
        anonymous.sys.rekey(init["keys"][0], nonce="not-the-nonce")

    step = anonymous.sys.rekey(init["keys"][0], nonce=nonce)
    assert step["progress"] == 1
    with pytest.raises(hvac.exceptions.InvalidRequest, match="already been provided"):
        anonymous.sys.rekey(init["keys"][0], nonce=nonce)
    done = anonymous.sys.rekey(init["keys_base64"][2], nonce=nonce)
    assert done["complete"] is True
    assert len(done["keys"]) == 5
    assert anonymous.sys.read_rekey_progress()["started"] is False

    client.sys.seal()
    with pytest.raises(hvac.exceptions.InvalidRequest):
        anonymous.sys.submit_unseal_keys(init["keys"])
    status = anonymous.sys.submit_unseal_keys(done["keys"][2:5])
    assert status["sealed"] is False
    assert (status["t"], status["n"]) == (3, 5)


def test_rekey_with_verification_and_cancel(operator_server):
    client, init = _init(operator_server, 1, 1)
    anonymous = hvac.Client(url=operator_server.addr)

    started = anonymous.sys.start_rekey(secret_shares=1, secret_threshold=1)
    assert anonymous.sys.cancel_rekey().status_code == 204
    assert anonymous.sys.read_rekey_progress()["started"] is False
    with pytest.raises(hvac.exceptions.InvalidRequest, match="no barrier rekey in progress"):
        anonymous.sys.rekey(init["keys"][0], nonce=started["nonce"])

    started = anonymous.sys.start_rekey(
        secret_shares=3, secret_threshold=2, require_verification=True
    )
    assert started["verification_required"] is True
    done = anonymous.sys.rekey(init["keys"][0], nonce=started["nonce"])
    assert done["complete"] is True
    assert done["verification_required"] is True
    vnonce = done["verification_nonce"]

    step = anonymous.sys.rekey_verify(done["keys"][0], nonce=vnonce)
    assert step["progress"] == 1
    verified = anonymous.sys.rekey_verify(done["keys"][1], nonce=vnonce)
    assert verified["complete"] is True

    client.sys.seal()
    status = anonymous.sys.submit_unseal_keys(done["keys"][1:3])
    assert status["sealed"] is False


def test_generate_root_gives_a_working_root_token(operator_server):
    client, init = _init(operator_server, 3, 2)
    anonymous = hvac.Client(url=operator_server.addr)

    progress = anonymous.sys.read_root_generation_progress()
    assert progress["started"] is False
    assert progress["required"] == 2
    otp_length = progress["otp_length"]

    # A generated OTP is returned once; cancel and use our own.
    started = anonymous.sys.start_root_token_generation()
    assert len(started["otp"]) == otp_length
    assert anonymous.sys.cancel_root_generation().status_code == 204

    otp = "A" * otp_length
    started = anonymous.sys.start_root_token_generation(otp=otp)
    assert started["started"] is True
    assert started["otp"] == ""
    nonce = started["nonce"]

    step = anonymous.sys.generate_root(init["keys"][1], nonce)
    assert step["progress"] == 1
    assert step["complete"] is False
    done = anonymous.sys.generate_root(init["keys"][0], nonce)
    assert done["complete"] is True
    token = _decode(done["encoded_token"], otp)
    assert token != init["root_token"]

    new_root = hvac.Client(url=operator_server.addr, token=token)
    me = new_root.auth.token.lookup_self()["data"]
    assert me["policies"] == ["root"]
    new_root.sys.enable_secrets_engine("kv", path="by-new-root")
    assert "by-new-root/" in new_root.sys.list_mounted_secrets_engines()["data"]


def test_move_backend_moves_a_secrets_engine(dev_server):
    client = hvac.Client(url=dev_server.addr, token=dev_server.token)
    client.sys.enable_secrets_engine("kv", path="old-place", options={"version": "1"})
    client.secrets.kv.v1.create_or_update_secret("app", {"v": "kept"}, mount_point="old-place")

    moved = client.sys.move_backend("old-place", "new-place")
    migration_id = moved["data"]["migration_id"]
    # OpenBao moves in the background; poll the status until it is done.
    for _ in range(100):
        status = client.read(f"sys/remount/status/{migration_id}")["data"]
        if status["migration_info"]["status"] != "in-progress":
            break
        time.sleep(0.05)
    assert status["migration_info"] == {
        "source_mount": "old-place/",
        "target_mount": "new-place/",
        "status": "success",
    }
    mounts = client.sys.list_mounted_secrets_engines()["data"]
    assert "new-place/" in mounts and "old-place/" not in mounts
    assert client.secrets.kv.v1.read_secret("app", mount_point="new-place")["data"] == {"v": "kept"}
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.secrets.kv.v1.read_secret("app", mount_point="old-place")


def test_tune_auth_method_stores_lease_ttls_above_the_system_max(dev_server):
    client = hvac.Client(url=dev_server.addr, token=dev_server.token)
    client.sys.enable_auth_method("approle", path="tuned")
    client.sys.tune_auth_method(
        "tuned",
        default_lease_ttl="1h",
        max_lease_ttl="100000h",
        description="tuned by hvac",
        listing_visibility="unauth",
    )
    tuning = client.sys.read_auth_method_tuning("tuned")["data"]
    assert tuning["default_lease_ttl"] == 3600
    # Above the system maximum (768h): stored as given, as OpenBao does.
    assert tuning["max_lease_ttl"] == 100000 * 3600
    assert tuning["description"] == "tuned by hvac"
    assert tuning["listing_visibility"] == "unauth"
    methods = client.sys.list_auth_methods()["data"]
    assert methods["tuned/"]["config"]["max_lease_ttl"] == 100000 * 3600
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.sys.tune_auth_method("tuned", default_lease_ttl="200000h")
