"""Rotation: signing keys (active -> verifying -> retired) and access-key
credentials (overlap and revoke); secrets stay sealed in the database."""

import glob
import time

import jwt
import pytest

from iamharness import API, raw_private, token_header
from ucharness import assert_error, expect, expect_deleted

pytestmark = pytest.mark.iam


def kids(iam):
    return {k["kid"] for k in iam.jwks()["keys"]}


def statuses(iam):
    return {k["kid"]: k["status"] for k in
            expect(iam.admin.get(API + "/signing-keys"), 200)["items"]}


def verify(iam, token, client):
    key = client.get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["EdDSA"], audience="ultracloud")


def test_signing_key_rotation_and_retirement(iam):
    user = iam.new_user("member")
    old = token_header(user.token)["kid"]
    assert statuses(iam) == {old: "active"}
    pyjwk = jwt.PyJWKClient(iam.url + API + "/keys")
    verify(iam, user.token, pyjwk)

    new = expect(iam.admin.post(API + "/signing-keys"), 201)
    assert new["kid"] != old and new["status"] == "active"
    assert statuses(iam) == {old: "verifying", new["kid"]: "active"}
    assert kids(iam) == {old, new["kid"]}
    assert expect(user.client.get(API + "/whoami"), 200)["sub"] == user.id
    fresh = iam.token_for(user, user.project_id)
    assert token_header(fresh)["kid"] == new["kid"]
    assert verify(iam, fresh, pyjwk)["sub"] == user.id  # PyJWKClient refetches on new kid
    verify(iam, user.token, pyjwk)

    expect_deleted(iam.admin.delete(API + "/signing-keys/" + old))
    assert_error(user.client.get(API + "/whoami"), 401, "unauthenticated")
    info = expect(iam.admin.post(API + "/tokens/introspect", json={"token": user.token}), 200)
    assert info == {"active": False}
    assert expect(iam.client(fresh).get(API + "/whoami"), 200)["sub"] == user.id
    assert kids(iam) == {new["kid"]}
    assert statuses(iam) == {old: "retired", new["kid"]: "active"}


def test_retiring_the_active_key_conflicts(iam):
    user = iam.new_user("member")
    kid = token_header(user.token)["kid"]
    assert_error(iam.admin.delete(API + "/signing-keys/" + kid), 409)
    assert statuses(iam) == {kid: "active"} and kids(iam) == {kid}
    expect(user.client.get(API + "/whoami"), 200)


def test_deleting_an_unknown_kid_is_not_found(iam):
    r = iam.admin.delete(API + "/signing-keys/no-such-kid-aaaaaaaaaaaa")
    assert r.status_code in (400, 404), r.text
    assert_error(r, r.status_code)
    assert len(statuses(iam)) == 1


def test_signing_keys_need_system_admin(iam):
    admin = iam.new_user("admin")
    kid = token_header(admin.token)["kid"]
    assert_error(admin.client.get(API + "/signing-keys"), 403, "permission_denied")
    assert_error(admin.client.post(API + "/signing-keys"), 403, "permission_denied")
    assert_error(admin.client.delete(API + "/signing-keys/" + kid), 403, "permission_denied")
    assert_error(iam.anon.post(API + "/signing-keys"), 401, "unauthenticated")
    assert statuses(iam) == {kid: "active"}


def test_access_key_overlap_and_revoke(iam):
    pid = iam.create_project()["id"]
    sa = iam.new_service_account(pid)
    first = sa.credential
    assert first["id"].startswith("ak-") and first["principal_id"] == sa.id
    second = iam.create_credential(sa.id, description="next")
    assert second["secret"] != first["secret"]
    for cred in (first, second):
        tok = expect(iam.key_login(cred["id"], cred["secret"]), 201)
        assert tok["subject"] == sa.id and tok["project_id"] == pid

    expect_deleted(iam.admin.delete(API + "/credentials/" + first["id"]))
    assert_error(iam.key_login(first["id"], first["secret"]), 401, "unauthenticated")
    expect(iam.key_login(second["id"], second["secret"]), 201)
    got = {c["id"]: c["status"] for c in
           expect(iam.admin.get(API + "/credentials?principal_id=" + sa.id), 200)["items"]}
    assert got == {first["id"]: "revoked", second["id"]: "active"}


def test_secrets_never_returned_by_reads(iam):
    pid = iam.create_project()["id"]
    sa = iam.new_service_account(pid)
    secret = sa.credential["secret"]
    for path in ("/credentials/" + sa.credential["id"], "/credentials?principal_id=" + sa.id,
                 "/credentials", "/service-accounts/" + sa.id):
        r = iam.admin.get(API + path)
        expect(r, 200)
        assert secret not in r.text and '"secret"' not in r.text, (path, r.text)


def db_bytes(iam):
    data = b""
    for path in sorted(glob.glob(iam.db_path + "*")):
        with open(path, "rb") as f:
            data += f.read()
    assert data, "no database files at %s" % iam.db_path
    return data


def test_secrets_are_not_stored_in_plaintext(iam):
    user = iam.new_user("member")
    sa = iam.new_service_account(user.project_id)
    cred = iam.create_credential(user.id, client=user.client)
    expect(iam.admin.post(API + "/signing-keys"), 201)
    time.sleep(0.05)
    needles = {
        "sa secret": sa.credential["secret"].encode(),
        "user secret": cred["secret"].encode(),
        "password": user.password.encode(),
        "signing key (raw)": raw_private(iam.key),
        "signing key (pem)": iam.key_pem.split(b"\n")[1],
        "master key": iam.master_key,
        "bootstrap token": iam.bootstrap_token.encode(),
    }
    for phase in ("running", "stopped"):
        data = db_bytes(iam)
        for what, needle in needles.items():
            assert needle not in data, "%s found in the database (%s)" % (what, phase)
        if phase == "running":
            iam.stop()
