"""hvac against strongroom: the versioned key/value engine (KV version 2)
at the dev server's `secret/` mount, with the exceptions hvac raises on
errors.

Point STRONGROOM_BIN at OpenBao's `bao` to check these tests against the
reference implementation.
"""

import hvac
import pytest

CAS_MISMATCH = "check-and-set parameter did not match the current version"
CAS_REQUIRED = "check-and-set parameter required for this call"


@pytest.fixture
def kv(dev_server):
    return hvac.Client(url=dev_server.addr, token=dev_server.token).secrets.kv.v2


def read(kv, path, version=None):
    return kv.read_secret_version(
        path, version=version, mount_point="secret", raise_on_deleted_version=True
    )


def test_write_read_versions(kv):
    first = kv.create_or_update_secret("app", secret={"a": "1"}, mount_point="secret")
    assert first["data"]["version"] == 1
    assert first["data"]["destroyed"] is False
    assert first["data"]["deletion_time"] == ""
    second = kv.create_or_update_secret(
        "app", secret={"a": "2", "n": 3, "nested": {"x": [1, 2]}}, mount_point="secret"
    )
    assert second["data"]["version"] == 2

    latest = read(kv, "app")
    assert latest["data"]["data"] == {"a": "2", "n": 3, "nested": {"x": [1, 2]}}
    assert latest["data"]["metadata"]["version"] == 2
    old = read(kv, "app", version=1)
    assert old["data"]["data"] == {"a": "1"}
    assert old["data"]["metadata"]["version"] == 1

    with pytest.raises(hvac.exceptions.InvalidPath):
        read(kv, "app", version=9)
    with pytest.raises(hvac.exceptions.InvalidPath):
        read(kv, "nothing")


def test_check_and_set(kv):
    kv.create_or_update_secret("k", secret={"v": "1"}, cas=0, mount_point="secret")
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        kv.create_or_update_secret("k", secret={"v": "x"}, cas=0, mount_point="secret")
    assert CAS_MISMATCH in str(err.value)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        kv.create_or_update_secret("k", secret={"v": "x"}, cas=5, mount_point="secret")
    done = kv.create_or_update_secret("k", secret={"v": "2"}, cas=1, mount_point="secret")
    assert done["data"]["version"] == 2
    assert read(kv, "k")["data"]["data"] == {"v": "2"}

    # cas_required on one key's metadata.
    kv.update_metadata("guarded", cas_required=True, mount_point="secret")
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        kv.create_or_update_secret("guarded", secret={"v": "1"}, mount_point="secret")
    assert CAS_REQUIRED in str(err.value)
    kv.create_or_update_secret("guarded", secret={"v": "1"}, cas=0, mount_point="secret")


def test_patch(kv):
    kv.create_or_update_secret("p", secret={"a": "1", "b": "2"}, mount_point="secret")
    patched = kv.patch("p", secret={"b": "20", "c": "3"}, mount_point="secret")
    assert patched["data"]["version"] == 2
    assert read(kv, "p")["data"]["data"] == {"a": "1", "b": "20", "c": "3"}
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.patch("missing", secret={"a": "1"}, mount_point="secret")


def test_delete_undelete_destroy(kv):
    for v in ("1", "2", "3"):
        kv.create_or_update_secret("d", secret={"v": v}, mount_point="secret")

    kv.delete_latest_version_of_secret("d", mount_point="secret")
    with pytest.raises(hvac.exceptions.InvalidPath):
        read(kv, "d")
    # Asked not to raise, hvac returns the deleted version's metadata.
    deleted = kv.read_secret_version(
        "d", mount_point="secret", raise_on_deleted_version=False
    )
    assert deleted["data"]["data"] is None
    assert deleted["data"]["metadata"]["version"] == 3
    assert deleted["data"]["metadata"]["deletion_time"] != ""
    assert read(kv, "d", version=2)["data"]["data"] == {"v": "2"}

    kv.delete_secret_versions("d", versions=[1, 2], mount_point="secret")
    with pytest.raises(hvac.exceptions.InvalidPath):
        read(kv, "d", version=1)
    kv.undelete_secret_versions("d", versions=[1, 3], mount_point="secret")
    assert read(kv, "d", version=1)["data"]["data"] == {"v": "1"}
    assert read(kv, "d")["data"]["data"] == {"v": "3"}

    kv.destroy_secret_versions("d", versions=[1], mount_point="secret")
    with pytest.raises(hvac.exceptions.InvalidPath):
        read(kv, "d", version=1)
    kv.undelete_secret_versions("d", versions=[1], mount_point="secret")
    with pytest.raises(hvac.exceptions.InvalidPath):
        read(kv, "d", version=1)

    versions = kv.read_secret_metadata("d", mount_point="secret")["data"]["versions"]
    assert versions["1"]["destroyed"] is True
    assert versions["2"]["deletion_time"] != ""
    assert versions["3"]["deletion_time"] == ""


def test_metadata_and_list(kv):
    kv.create_or_update_secret("top", secret={"v": "1"}, mount_point="secret")
    kv.create_or_update_secret("top", secret={"v": "2"}, mount_point="secret")
    kv.create_or_update_secret("dir/a", secret={"v": "1"}, mount_point="secret")

    meta = kv.read_secret_metadata("top", mount_point="secret")["data"]
    assert meta["current_version"] == 2
    assert sorted(meta["versions"]) == ["1", "2"]
    assert meta["created_time"] and meta["updated_time"]

    kv.update_metadata(
        "top",
        max_versions=4,
        custom_metadata={"owner": "me"},
        mount_point="secret",
    )
    meta = kv.read_secret_metadata("top", mount_point="secret")["data"]
    assert meta["max_versions"] == 4
    assert meta["custom_metadata"] == {"owner": "me"}
    assert read(kv, "top")["data"]["metadata"]["custom_metadata"] == {"owner": "me"}

    assert kv.list_secrets("", mount_point="secret")["data"]["keys"] == ["dir/", "top"]
    assert kv.list_secrets("dir", mount_point="secret")["data"]["keys"] == ["a"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.list_secrets("nothing", mount_point="secret")

    kv.delete_metadata_and_all_versions("top", mount_point="secret")
    with pytest.raises(hvac.exceptions.InvalidPath):
        read(kv, "top")
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv.read_secret_metadata("top", mount_point="secret")
    assert kv.list_secrets("", mount_point="secret")["data"]["keys"] == ["dir/"]


def test_max_versions_trims_old_versions(kv):
    kv.update_metadata("trim", max_versions=2, mount_point="secret")
    for v in range(1, 6):
        kv.create_or_update_secret("trim", secret={"v": str(v)}, mount_point="secret")
    meta = kv.read_secret_metadata("trim", mount_point="secret")["data"]
    assert meta["current_version"] == 5
    assert meta["oldest_version"] == 4
    assert sorted(meta["versions"]) == ["4", "5"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        read(kv, "trim", version=3)


def test_configure(kv):
    config = kv.read_configuration(mount_point="secret")["data"]
    assert config["max_versions"] == 0
    assert config["cas_required"] is False
    assert config["delete_version_after"] == "0s"

    kv.configure(
        max_versions=3,
        cas_required=True,
        delete_version_after="1h",
        mount_point="secret",
    )
    config = kv.read_configuration(mount_point="secret")["data"]
    assert config["max_versions"] == 3
    assert config["cas_required"] is True
    assert config["delete_version_after"] == "1h0m0s"

    # The mount now requires check-and-set.
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        kv.create_or_update_secret("c", secret={"v": "1"}, mount_point="secret")
    assert CAS_REQUIRED in str(err.value)
    written = kv.create_or_update_secret(
        "c", secret={"v": "1"}, cas=0, mount_point="secret"
    )
    assert written["data"]["deletion_time"] != ""

    with pytest.raises(hvac.exceptions.InvalidRequest):
        kv.configure(delete_version_after="soon", mount_point="secret")
