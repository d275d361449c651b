"""hvac against strongroom: the userpass auth method (`client.auth.userpass`:
users, passwords, login), with the exceptions hvac raises on errors.

Point STRONGROOM_BIN at OpenBao's `bao` to check these tests against the
reference implementation.
"""

import hvac
import pytest


@pytest.fixture
def client(dev_server):
    c = hvac.Client(url=dev_server.addr, token=dev_server.token)
    c.sys.enable_auth_method("userpass")
    return c


def fresh(dev_server):
    """A client with no token (none from the environment either), as a
    person's session starts out."""
    return hvac.Client(url=dev_server.addr, token="")


def test_user_crud_and_list(client):
    assert "userpass/" in client.sys.list_auth_methods()["data"]
    client.auth.userpass.create_or_update_user(
        "Alice", password="pw-alice", policies=["dev", "ops"], token_ttl="10m"
    )
    data = client.auth.userpass.read_user("alice")["data"]
    assert data["token_policies"] == ["dev", "ops"]
    assert data["policies"] == ["dev", "ops"]
    assert data["token_ttl"] == 600
    assert "password" not in data and "password_hash" not in data

    # An update changes only what it names, and needs no password.
    client.auth.userpass.create_or_update_user("alice", token_max_ttl="1h")
    data = client.auth.userpass.read_user("alice")["data"]
    assert data["token_max_ttl"] == 3600
    assert data["token_ttl"] == 600

    client.auth.userpass.create_or_update_user("bob", password="pw-bob")
    assert client.auth.userpass.list_user()["data"]["keys"] == ["alice", "bob"]
    client.auth.userpass.delete_user("bob")
    assert client.auth.userpass.list_user()["data"]["keys"] == ["alice"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.auth.userpass.read_user("bob")

    # A new user needs a password.
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        client.auth.userpass.create_or_update_user("carol")
    assert "must provide either password or password_hash" in str(err.value)


def test_login_and_password_change(client, dev_server):
    client.auth.userpass.create_or_update_user(
        "dave", password="first-pw", policies=["dev"]
    )
    user = fresh(dev_server)
    resp = user.auth.userpass.login("Dave", "first-pw")
    auth = resp["auth"]
    assert auth["metadata"] == {"username": "dave"}
    assert auth["policies"] == ["default", "dev"]
    assert user.token == auth["client_token"]
    assert user.is_authenticated()
    me = user.auth.token.lookup_self()["data"]
    assert me["display_name"] == "userpass-dave"
    assert me["meta"] == {"username": "dave"}

    client.auth.userpass.update_password_on_user("dave", "second-pw")
    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        fresh(dev_server).auth.userpass.login("dave", "first-pw")
    assert "invalid username or password" in str(err.value)
    fresh(dev_server).auth.userpass.login("dave", "second-pw")

    with pytest.raises(hvac.exceptions.InvalidRequest) as err:
        fresh(dev_server).auth.userpass.login("nobody", "second-pw")
    assert "invalid username or password" in str(err.value)


def test_wrong_passwords_lock_the_user_out(client, dev_server):
    client.auth.userpass.create_or_update_user("erin", password="right-pw")
    for _ in range(5):
        with pytest.raises(hvac.exceptions.InvalidRequest):
            fresh(dev_server).auth.userpass.login("erin", "wrong-pw")
    with pytest.raises(hvac.exceptions.Forbidden):
        fresh(dev_server).auth.userpass.login("erin", "right-pw")
