"""hvac against strongroom: the identity secrets engine
(`client.secrets.identity`: entities, entity aliases, groups, group
aliases, lookups, merge, OIDC keys, roles and tokens), and the entity a
userpass login resolves to.

Point STRONGROOM_BIN at OpenBao's `bao` to check these tests against the
reference implementation.
"""

import hvac
import pytest


@pytest.fixture
def client(dev_server):
    return hvac.Client(url=dev_server.addr, token=dev_server.token)


def userpass_accessor(client):
    client.sys.enable_auth_method("userpass")
    return client.sys.list_auth_methods()["data"]["userpass/"]["accessor"]


def test_entities_crud_by_id_and_name(client):
    ident = client.secrets.identity
    created = ident.create_or_update_entity(
        name="alice", policies=["dev"], metadata={"team": "a"}
    )["data"]
    eid = created["id"]
    read = ident.read_entity(eid)["data"]
    assert read["name"] == "alice"
    assert read["policies"] == ["dev"]
    assert read["metadata"] == {"team": "a"}
    assert ident.read_entity_by_name("alice")["data"]["id"] == eid

    ident.update_entity(eid, policies=["dev", "ops"], disabled=True)
    read = ident.read_entity(eid)["data"]
    assert read["policies"] == ["dev", "ops"]
    assert read["disabled"] is True

    ident.create_or_update_entity_by_name("bob", metadata={"team": "b"})
    assert sorted(ident.list_entities_by_name()["data"]["keys"]) == ["alice", "bob"]
    assert eid in ident.list_entities()["data"]["keys"]

    ident.delete_entity_by_name("bob")
    ident.delete_entity(eid)
    with pytest.raises(hvac.exceptions.InvalidPath):
        ident.read_entity(eid)


def test_aliases_lookup_and_merge(client):
    ident = client.secrets.identity
    accessor = userpass_accessor(client)
    a = ident.create_or_update_entity(name="a")["data"]["id"]
    b = ident.create_or_update_entity(name="b")["data"]["id"]
    alias = ident.create_or_update_entity_alias(
        name="alice", canonical_id=a, mount_accessor=accessor
    )["data"]
    assert alias["canonical_id"] == a
    read = ident.read_entity_alias(alias["id"])["data"]
    assert read["name"] == "alice"
    assert read["mount_accessor"] == accessor
    assert alias["id"] in ident.list_entity_aliases()["data"]["keys"]

    found = ident.lookup_entity(alias_name="alice", alias_mount_accessor=accessor)
    assert found["data"]["id"] == a
    assert ident.lookup_entity(name="b")["data"]["id"] == b
    # No match: hvac returns the empty 204 answer.
    assert ident.lookup_entity(name="nobody").status_code == 204

    # Merging a into b moves a's alias to b.
    ident.merge_entities(from_entity_ids=[a], to_entity_id=b)
    merged = ident.read_entity(b)["data"]
    assert [x["name"] for x in merged["aliases"]] == ["alice"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        ident.read_entity(a)

    ident.delete_entity_alias(alias["id"])
    with pytest.raises(hvac.exceptions.InvalidPath):
        ident.read_entity_alias(alias["id"])


def test_groups_nested_and_external(client):
    ident = client.secrets.identity
    accessor = userpass_accessor(client)
    e = ident.create_or_update_entity(name="carol")["data"]["id"]
    inner = ident.create_or_update_group(
        name="inner", policies=["gi"], member_entity_ids=[e]
    )["data"]["id"]
    outer = ident.create_or_update_group(
        name="outer", policies=["go"], member_group_ids=[inner]
    )["data"]["id"]
    read = ident.read_group(inner)["data"]
    assert read["member_entity_ids"] == [e]
    assert read["parent_group_ids"] == [outer]
    assert ident.read_group_by_name("outer")["data"]["id"] == outer
    assert sorted(ident.list_groups_by_name()["data"]["keys"]) == ["inner", "outer"]

    # A cycle is refused.
    with pytest.raises(hvac.exceptions.InvalidRequest):
        ident.update_group(inner, name="inner", member_group_ids=[outer])

    ext = ident.create_or_update_group(name="ext", group_type="external")["data"]["id"]
    galias = ident.create_or_update_group_alias(
        name="ldap-ops", mount_accessor=accessor, canonical_id=ext
    )["data"]["id"]
    assert ident.read_group_alias(galias)["data"]["name"] == "ldap-ops"
    assert ident.lookup_group(alias_name="ldap-ops", alias_mount_accessor=accessor)[
        "data"
    ]["id"] == ext
    ident.delete_group_alias(galias)
    ident.delete_group_by_name("outer")
    ident.delete_group(inner)
    assert ident.list_groups_by_name()["data"]["keys"] == ["ext"]


def test_a_userpass_login_resolves_to_an_entity_with_group_policies(client, dev_server):
    ident = client.secrets.identity
    accessor = userpass_accessor(client)
    client.auth.userpass.create_or_update_user("dave", password="pw", policies=["own"])
    user = hvac.Client(url=dev_server.addr, token="")
    auth = user.auth.userpass.login("dave", "pw")["auth"]
    entity_id = auth["entity_id"]
    assert entity_id
    entity = ident.read_entity(entity_id)["data"]
    assert entity["aliases"][0]["name"] == "dave"
    assert entity["aliases"][0]["mount_accessor"] == accessor

    ident.create_or_update_group(name="g", policies=["from-group"], member_entity_ids=[entity_id])
    looked_up = user.auth.token.lookup_self()["data"]
    assert looked_up["entity_id"] == entity_id
    assert looked_up["identity_policies"] == ["from-group"]


def test_oidc_keys_roles_and_tokens(client, dev_server):
    ident = client.secrets.identity
    ident.create_named_key("k1", algorithm="RS256", allowed_client_ids=["*"])
    assert ident.read_named_key("k1")["data"]["algorithm"] == "RS256"
    assert "k1" in ident.list_named_keys()["data"]["keys"]
    ident.create_or_update_role("r1", key="k1", ttl="1h")
    role = ident.read_role("r1")["data"]
    assert role["key"] == "k1"
    assert "r1" in ident.list_roles()["data"]["keys"]

    client.sys.create_or_update_policy(
        "oidc", 'path "identity/oidc/token/*" { capabilities = ["read"] }'
    )
    client.sys.enable_auth_method("userpass")
    client.auth.userpass.create_or_update_user("erin", password="pw", policies=["oidc"])
    user = hvac.Client(url=dev_server.addr, token="")
    auth = user.auth.userpass.login("erin", "pw")["auth"]
    token = user.secrets.identity.generate_signed_id_token("r1")["data"]
    assert token["client_id"] == role["client_id"]
    introspected = client.secrets.identity.introspect_signed_id_token(
        token=token["token"], client_id=role["client_id"]
    )
    assert introspected["active"] is True
    keys = client.secrets.identity.read_active_public_keys()
    assert any(k["kid"] for k in keys["keys"])
    config = client.secrets.identity.read_well_known_configurations()
    assert config["issuer"].endswith("/v1/identity/oidc")
    assert auth["entity_id"]
    ident.rotate_named_key("k1", verification_ttl="1h")
