"""IAM tokens: claims, interoperable verification with PyJWT and the JWKS,
failed logins, rate limits, introspection and rejection of forged,
expired or altered tokens (docs/api/iam.md "Tokens")."""

import datetime
import json
import time

import jwt
import pytest

from iamharness import (API, b64url, ed25519_pem, raw_public, token_claims, token_header,
                        unique)
from ucharness import assert_error, expect

pytestmark = pytest.mark.iam


def whoami(iam, token):
    return iam.client(token).get(API + "/whoami")


def introspect(iam, token):
    return expect(iam.admin.post(API + "/tokens/introspect", json={"token": token}), 200)


def parse_time(text):
    assert text.endswith("Z"), text
    return datetime.datetime.fromisoformat(text[:-1]).replace(tzinfo=datetime.timezone.utc)


# --- what a token says ---------------------------------------------------------

def test_password_token_response_and_claims(iam):
    user = iam.new_user("member")
    before = int(time.time())
    body = expect(iam.login(user.name, user.password, user.project_id, ttl=900), 201)
    after = int(time.time())
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["subject"] == user.id and body["project_id"] == user.project_id
    assert body["roles"] == ["member"] and body["system_admin"] is False

    hdr = token_header(body["token"])
    assert hdr["alg"] == "EdDSA" and hdr["typ"] == "JWT" and hdr["kid"]
    c = token_claims(body["token"])
    assert c["iss"] == "ultracloud-iam" and c["aud"] == "ultracloud"
    assert c["sub"] == user.id and c["name"] == user.name and c["kind"] == "user"
    assert c["project"] == user.project_id and c["roles"] == ["member"] and c["sys"] is False
    assert before - 1 <= c["iat"] <= after + 1 and c["exp"] - c["iat"] == 900
    assert isinstance(c["jti"], str) and c["jti"]
    assert abs(parse_time(body["expires_at"]).timestamp() - c["exp"]) < 1.0


def test_default_ttl_is_the_server_token_ttl(iam_factory):
    iam = iam_factory(args=["--token-ttl", "120"])
    user = iam.new_user("reader")
    c = token_claims(user.token)
    assert c["exp"] - c["iat"] == 120
    assert_error(iam.login(user.name, user.password, user.project_id, ttl=121), 400,
                 "invalid_argument")
    c = token_claims(expect(iam.login(user.name, user.password, user.project_id, ttl=60),
                            201)["token"])
    assert c["exp"] - c["iat"] == 60


@pytest.mark.parametrize("ttl", [59, 3601, 0, -5])
def test_ttl_outside_60_to_token_ttl_is_invalid(iam, ttl):
    user = iam.create_user()
    assert_error(iam.login(user.name, user.password, ttl=ttl), 400, "invalid_argument")


def test_every_token_has_a_new_jti(iam):
    user = iam.new_user("member")
    jtis = {token_claims(iam.token_for(user, user.project_id))["jti"] for _ in range(3)}
    jtis.add(token_claims(user.token)["jti"])
    assert len(jtis) == 4


def test_token_verifies_with_pyjwt_against_jwks(iam):
    user = iam.new_user("admin")
    keys = iam.jwks()["keys"]
    assert len(keys) == 1
    k = keys[0]
    assert (k["kty"], k["crv"], k["alg"], k["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert k["x"] == b64url(raw_public(iam.key)), "JWKS key is not the --signing-key-file key"
    assert "d" not in k, "JWKS leaks the private key"
    assert token_header(user.token)["kid"] == k["kid"]

    client = jwt.PyJWKClient(iam.url + API + "/keys")
    signing_key = client.get_signing_key_from_jwt(user.token)
    claims = jwt.decode(user.token, signing_key.key, algorithms=["EdDSA"], audience="ultracloud",
                        issuer="ultracloud-iam")
    assert claims["sub"] == user.id and claims["roles"] == ["admin"]
    key = jwt.PyJWK(k)
    assert jwt.decode(user.token, key.key, algorithms=["EdDSA"], audience="ultracloud") == claims


def test_project_defaults_to_the_only_binding(iam):
    user = iam.new_user("member")
    body = expect(iam.login(user.name, user.password), 201)
    assert body["project_id"] == user.project_id
    assert token_claims(body["token"])["project"] == user.project_id

    other = iam.create_project()["id"]
    iam.bind(user.id, "reader", other)
    body = expect(iam.login(user.name, user.password), 201)
    assert "project" not in token_claims(body["token"])
    assert body.get("project_id") is None
    body = expect(iam.login(user.name, user.password, other), 201)
    assert body["project_id"] == other and body["roles"] == ["reader"]


def test_service_account_token_defaults_to_its_project(iam):
    pid = iam.create_project()["id"]
    sa = iam.new_service_account(pid, role="admin")
    c = token_claims(sa.token)
    assert c["sub"] == sa.id and c["kind"] == "service_account" and c["name"] == sa.name
    assert c["project"] == pid and c["roles"] == ["admin"] and c["sys"] is False


def test_login_to_project_without_role_is_forbidden(iam):
    user = iam.new_user("member")
    other = iam.create_project()["id"]
    assert_error(iam.login(user.name, user.password, other), 403, "permission_denied")


# --- failed logins -------------------------------------------------------------

def test_failed_logins_are_indistinguishable(iam):
    user = iam.new_user("member")
    disabled = iam.new_user("member", user.project_id)
    expect(iam.admin.patch(API + "/users/" + disabled.id, json={"disabled": True}), 200)
    pid = iam.create_project()["id"]
    sa = iam.new_service_account(pid)
    revoked = iam.create_credential(sa.id)
    expect(iam.admin.delete(API + "/credentials/" + revoked["id"]), 200, 204)

    attempts = {
        "wrong password": iam.login(user.name, user.password + "x"),
        "unknown user": iam.login(unique("nobody"), user.password),
        "disabled user": iam.login(disabled.name, disabled.password),
        "unknown access key": iam.key_login("ak-" + "a" * 20, sa.credential["secret"]),
        "wrong secret": iam.key_login(sa.credential["id"], sa.credential["secret"] + "x"),
        "revoked access key": iam.key_login(revoked["id"], revoked["secret"]),
    }
    bodies = {}
    for why, r in attempts.items():
        err = dict(assert_error(r, 401, "unauthenticated"))
        assert "invalid credentials" in err["message"].lower(), (why, err)
        del err["request_id"]
        bodies[why] = err
    assert len({json.dumps(b, sort_keys=True) for b in bodies.values()}) == 1, bodies


def test_disabled_user_cannot_log_in_and_its_token_goes_inactive(iam):
    user = iam.new_user("member")
    assert introspect(iam, user.token)["active"] is True
    expect(iam.admin.patch(API + "/users/" + user.id, json={"disabled": True}), 200)
    assert introspect(iam, user.token) == {"active": False}
    assert_error(iam.login(user.name, user.password, user.project_id), 401, "unauthenticated")
    expect(iam.admin.patch(API + "/users/" + user.id, json={"disabled": False}), 200)
    expect(iam.login(user.name, user.password, user.project_id), 201)


def test_rate_limit_per_username_and_access_key(iam_factory):
    iam = iam_factory(args=["--token-rate", "3"])
    user = iam.create_user()
    other = iam.create_user()
    for _ in range(3):
        assert_error(iam.login(user.name, "wrong-password"), 401, "unauthenticated")
    r = iam.login(user.name, user.password)
    assert_error(r, 429, "rate_limited")
    retry = r.headers.get("Retry-After")
    assert retry is not None and retry.isdigit() and 1 <= int(retry) <= 60, retry
    assert_error(iam.login(user.name, user.password), 429, "rate_limited")
    expect(iam.login(other.name, other.password), 201)

    sa = iam.new_service_account(iam.create_project()["id"])  # one attempt used
    for _ in range(2):
        assert_error(iam.key_login(sa.credential["id"], "wrong"), 401, "unauthenticated")
    r = iam.key_login(sa.credential["id"], sa.credential["secret"])
    assert_error(r, 429, "rate_limited")
    assert r.headers.get("Retry-After", "").isdigit()


# --- introspection -------------------------------------------------------------

def test_introspect_active_token(iam):
    user = iam.new_user("member")
    info = expect(user.client.post(API + "/tokens/introspect", json={"token": user.token}), 200)
    c = token_claims(user.token)
    assert info["active"] is True
    assert (info["sub"], info["name"], info["project"], info["roles"], info["sys"],
            info["exp"]) == (user.id, user.name, user.project_id, ["member"], False, c["exp"])
    assert info["kid"] == token_header(user.token)["kid"]


@pytest.mark.parametrize("token", ["abc", "a.b.c", "eyJhbGciOiJFZERTQSJ9.e30.", "x" * 200])
def test_introspect_malformed_token_is_inactive(iam, token):
    assert introspect(iam, token) == {"active": False}


def test_introspect_needs_a_valid_bearer(iam):
    user = iam.new_user("member")
    r = iam.anon.post(API + "/tokens/introspect", json={"token": user.token})
    assert_error(r, 401, "unauthenticated")


# --- rejected tokens -----------------------------------------------------------

def resigned(iam, token, **changes):
    """The claims of `token` with `changes` (None deletes) and a new jti."""
    c = token_claims(token)
    c["jti"] = unique("jti")
    for k, v in changes.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def assert_rejected(iam, token):
    assert_error(whoami(iam, token), 401, "unauthenticated")
    assert introspect(iam, token) == {"active": False}


def test_token_signed_with_daemon_key_is_accepted(iam):
    """Control for the forgeries below: our own signing works when nothing
    is wrong, so each rejection is due to the one property changed."""
    user = iam.new_user("member")
    now = int(time.time())
    token = iam.sign(resigned(iam, user.token, iat=now, exp=now + 300))
    assert expect(whoami(iam, token), 200)["sub"] == user.id
    assert introspect(iam, token)["active"] is True


def test_expired_token_is_rejected(iam):
    user = iam.new_user("member")
    now = int(time.time())
    assert_rejected(iam, iam.sign(resigned(iam, user.token, iat=now - 600, exp=now - 120)))


def test_token_from_another_key_with_known_kid_is_rejected(iam):
    user = iam.new_user("member")
    _, other = ed25519_pem()
    now = int(time.time())
    assert_rejected(iam, iam.sign(resigned(iam, user.token, iat=now, exp=now + 300), key=other))


def test_wrong_audience_is_rejected(iam):
    user = iam.new_user("member")
    now = int(time.time())
    assert_rejected(iam, iam.sign(resigned(iam, user.token, aud="elsewhere", iat=now,
                                           exp=now + 300)))


def test_alg_none_is_rejected(iam):
    user = iam.new_user("member")
    hdr = {"alg": "none", "typ": "JWT", "kid": token_header(user.token)["kid"]}
    claims = resigned(iam, user.token)
    token = "%s.%s." % (b64url(json.dumps(hdr).encode()), b64url(json.dumps(claims).encode()))
    assert_rejected(iam, token)


def test_hs256_keyed_with_public_key_is_rejected(iam):
    user = iam.new_user("member")
    kid = token_header(user.token)["kid"]
    token = jwt.encode(resigned(iam, user.token), raw_public(iam.key), algorithm="HS256",
                       headers={"kid": kid})
    assert_rejected(iam, token)


def test_altered_payload_is_rejected(iam):
    user = iam.new_user("reader")
    head, _, sig = user.token.split(".")
    claims = token_claims(user.token)
    claims["roles"] = ["admin"]
    assert_rejected(iam, "%s.%s.%s" % (head, b64url(json.dumps(claims).encode()), sig))


@pytest.mark.parametrize("auth", ["Bearer", "Bearer ", "Bearer x.y.z", "Token abc"])
def test_garbage_authorization_is_unauthenticated(iam, auth):
    r = iam.anon.get(API + "/whoami", headers={"Authorization": auth})
    assert_error(r, 401, "unauthenticated")
