"""Durability: SIGTERM exits 0 and a restart on the same store brings back
every object, the signing keys and the validity of issued tokens; a new
key in --signing-key-file becomes the active key (rotation by file)."""

import jwt
import pytest

from iamharness import API, b64url, raw_public, token_header
from ucharness import expect, expect_deleted

pytestmark = [pytest.mark.iam, pytest.mark.restart]


def everything(iam):
    get = iam.admin.get
    return {p: expect(get(API + p), 200) for p in (
        "/projects?limit=1000", "/users?limit=1000", "/service-accounts?limit=1000",
        "/role-bindings?limit=1000", "/credentials?limit=1000", "/signing-keys", "/keys")}


def test_state_and_tokens_survive_restart(iam):
    user = iam.new_user("admin")
    sa = iam.new_service_account(user.project_id)
    spare = iam.create_credential(sa.id)
    expect_deleted(iam.admin.delete(API + "/credentials/" + spare["id"]))
    sysadmin = iam.create_user()
    iam.bind(sysadmin.id, "system-admin")
    old_kid = token_header(user.token)["kid"]
    expect(iam.admin.post(API + "/signing-keys"), 201)
    fresh = iam.token_for(user, user.project_id)
    expect(iam.admin.patch(API + "/projects/" + user.project_id, json={"description": "kept"}),
           200)
    before = everything(iam)
    first_stderr = iam.daemon.stderr_path

    iam.restart()
    assert iam.daemon.stderr_path != first_stderr

    assert everything(iam) == before
    for token in (user.token, fresh, sa.token):
        expect(iam.client(token).get(API + "/whoami"), 200)
        info = expect(iam.admin.post(API + "/tokens/introspect", json={"token": token}), 200)
        assert info["active"] is True
    assert token_header(user.token)["kid"] == old_kid
    key = jwt.PyJWKClient(iam.url + API + "/keys").get_signing_key_from_jwt(user.token)
    jwt.decode(user.token, key.key, algorithms=["EdDSA"], audience="ultracloud")

    expect(iam.login(user.name, user.password, user.project_id), 201)
    assert expect(iam.login(sysadmin.name, sysadmin.password), 201)["system_admin"] is True
    expect(iam.key_login(sa.credential["id"], sa.credential["secret"]), 201)
    r = iam.key_login(spare["id"], spare["secret"])
    assert r.status_code == 401, r.text
    again = iam.token_for(user, user.project_id)
    active = [k["kid"] for k in before["/signing-keys"]["items"] if k["status"] == "active"]
    assert token_header(again)["kid"] == active[0] != old_kid


def test_same_key_file_is_not_imported_twice(iam):
    kid = iam.active_kid()
    iam.restart()
    iam.restart()
    items = expect(iam.admin.get(API + "/signing-keys"), 200)["items"]
    assert [(k["kid"], k["status"]) for k in items] == [(kid, "active")]


def test_new_key_file_rotates_at_start(iam):
    user = iam.new_user("member")
    old = token_header(user.token)["kid"]
    iam.replace_signing_key()
    iam.restart()
    status = {k["kid"]: k["status"] for k in
              expect(iam.admin.get(API + "/signing-keys"), 200)["items"]}
    new = [k for k, s in status.items() if s == "active"]
    assert len(new) == 1 and new[0] != old and status[old] == "verifying", status
    jwks = {k["kid"]: k["x"] for k in iam.jwks()["keys"]}
    assert jwks[new[0]] == b64url(raw_public(iam.key)) and old in jwks
    expect(user.client.get(API + "/whoami"), 200)
    assert token_header(iam.token_for(user, user.project_id))["kid"] == new[0]


def test_restart_after_kill_keeps_acknowledged_writes(iam):
    """Writes are durable once acknowledged: SIGKILL loses none of them."""
    made = [iam.create_project()["id"] for _ in range(3)]
    user = iam.new_user("member", made[0])
    iam.daemon.kill()
    iam.start()
    listed = [p["id"] for p in expect(iam.admin.get(API + "/projects?limit=1000"), 200)["items"]]
    assert set(made) <= set(listed)
    expect(iam.login(user.name, user.password, made[0]), 201)
    expect(user.client.get(API + "/whoami"), 200)
