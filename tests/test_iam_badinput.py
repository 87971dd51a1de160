"""Bad input per route family: each gets the documented status and error
envelope, and a follow-up read shows that nothing changed
(conventions.md "Errors": a request that fails changes nothing)."""

import json
import secrets

import pytest

from iamharness import API, unique
from ucharness import assert_error, describe, expect, raw_request

pytestmark = pytest.mark.iam

MIB = 1024 * 1024
# Characters every lowercase base32 alphabet shares, for well-formed ids.
B32 = "abcdefghjkmnpqrstv234567"


def fresh_id(prefix):
    return prefix + "-" + "".join(secrets.choice(B32) for _ in range(20))


class Fixtures:
    """Objects the bad requests aim at, on one daemon for the module."""

    def __init__(self, iam):
        self.iam = iam
        self.pid = iam.create_project(description="bad input target")["id"]
        self.user = iam.new_user("admin", self.pid)
        self.sa = iam.new_service_account(self.pid)
        self.rb = expect(iam.admin.get(API + "/role-bindings?principal_id=" + self.sa.id),
                         200)["items"][0]
        self.kid = iam.active_kid()


@pytest.fixture(scope="module")
def fx(iam_shared):
    return Fixtures(iam_shared)


# Collection POSTs: a valid body maker, required fields, a string field to
# mistype, and the read that must not change.
FAMILIES = {
    "projects": (lambda fx: {"name": unique("p"), "description": "d"}, ["name"], "name",
                 lambda fx: API + "/projects?limit=1000"),
    "users": (lambda fx: {"name": unique("u"), "password": "password-1"}, ["name", "password"],
              "password", lambda fx: API + "/users?limit=1000"),
    "service-accounts": (lambda fx: {"name": unique("sa"), "project_id": fx.pid},
                         ["name", "project_id"], "name",
                         lambda fx: API + "/service-accounts?project_id=" + fx.pid),
    "role-bindings": (lambda fx: {"principal_id": fx.iam.create_user().id, "project_id": fx.pid,
                                  "role": "reader"}, ["principal_id", "role"], "role",
                      lambda fx: API + "/role-bindings?limit=1000"),
    "credentials": (lambda fx: {"principal_id": fx.sa.id, "description": "d"}, ["principal_id"],
                    "principal_id", lambda fx: API + "/credentials?principal_id=" + fx.sa.id),
    "tokens": (lambda fx: {"grant_type": "password", "username": fx.user.name,
                           "password": fx.user.password}, ["grant_type", "username", "password"],
               "username", None),
    "tokens/introspect": (lambda fx: {"token": fx.user.token}, ["token"], "token", None),
}


def state(fx, family):
    read = FAMILIES[family][3]
    return None if read is None else expect(fx.iam.admin.get(read(fx)), 200)


def post_raw(fx, family, data):
    return fx.iam.admin.post(API + "/" + family, data=data,
                             headers={"Content-Type": "application/json"})


def bad_bodies(fx, family):
    make, required, typed, _ = FAMILIES[family]
    cases = {
        "malformed json": b'{"a": ',
        "trailing garbage": json.dumps(make(fx)).encode() + b" x",
        "empty body": b"",
        "array": b"[]",
        "string": b'"text"',
        "null": b"null",
    }
    body = make(fx)
    body[typed] = 5
    cases["wrong type " + typed] = json.dumps(body).encode()
    body = make(fx)
    body[typed] = None
    cases["null " + typed] = json.dumps(body).encode()
    body = make(fx)
    body["bogus_field"] = 1
    cases["unknown field"] = json.dumps(body).encode()
    for field in required:
        body = make(fx)
        del body[field]
        cases["missing " + field] = json.dumps(body).encode()
    return cases


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_bad_bodies_are_invalid_and_change_nothing(fx, family):
    before = state(fx, family)
    for why, data in bad_bodies(fx, family).items():
        r = post_raw(fx, family, data)
        assert r.status_code == 400, "%s: %s" % (why, describe(r))
        assert_error(r, 400, "invalid_argument")
    assert state(fx, family) == before


@pytest.mark.parametrize("family,field,value", [
    ("projects", "name", "Upper"), ("projects", "name", "x" * 64), ("projects", "name", ""),
    ("projects", "name", "under_score"), ("users", "name", "has space"),
    ("users", "name", "y" * 64), ("users", "password", "short12"),
    ("users", "password", "p" * 257), ("role-bindings", "role", "owner"),
    ("role-bindings", "principal_id", "user-x"), ("service-accounts", "project_id", "proj-1"),
    ("tokens", "grant_type", "magic"), ("tokens", "ttl_seconds", "900"),
])
def test_invalid_values_are_rejected(fx, family, field, value):
    before = state(fx, family)
    body = FAMILIES[family][0](fx)
    body[field] = value
    assert_error(fx.iam.admin.post(API + "/" + family, json=body), 400, "invalid_argument")
    assert state(fx, family) == before


def test_name_limits_are_inclusive(fx):
    p = fx.iam.create_project(name="a" * 63)
    assert p["name"] == "a" * 63
    u = fx.iam.create_user(name="Z" * 63, password="p" * 8)
    assert u.name == "Z" * 63
    expect(fx.iam.admin.post(API + "/users", json={"name": unique("u"), "password": "p" * 256}),
           201)


# --- PATCH bodies ----------------------------------------------------------------

PATCHES = {
    "projects": ['{"description": ', '{"description": 5}', '{"revision": "1"}',
                 '{"name": "renamed"}', '{"bogus": true}', '[]', '{"description": null, "x": 1}'],
    "users": ['{"display_name": ', '{"disabled": "yes"}', '{"display_name": 7}',
              '{"password": "short"}', '{"name": "renamed"}', '{"revision": 1.5}', '[1]'],
}


@pytest.mark.parametrize("family", sorted(PATCHES))
def test_bad_patches_are_invalid_and_change_nothing(fx, family):
    rid = fx.pid if family == "projects" else fx.user.id
    path = API + "/%s/%s" % (family, rid)
    before = expect(fx.iam.admin.get(path), 200)
    for data in PATCHES[family]:
        r = fx.iam.admin.patch(path, data=data, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, "%s: %s" % (data, describe(r))
        assert_error(r, 400, "invalid_argument")
    assert expect(fx.iam.admin.get(path), 200) == before


# --- body size -------------------------------------------------------------------

def padded(obj, size):
    """JSON for `obj` padded with whitespace to exactly `size` bytes."""
    text = json.dumps(obj).encode()
    return text[:-1] + b" " * (size - len(text)) + b"}"


def send(fx, method, path, data):
    d = fx.iam.daemon
    return raw_request(d.host, d.port, method, path,
                       {"Authorization": "Bearer " + fx.iam.bootstrap_token,
                        "Content-Type": "application/json"}, data)


def assert_raw_error(status, hdrs, body, want_status, want_code):
    assert status == want_status, "expected %d, got %d %r" % (want_status, status, body[:300])
    err = json.loads(body)["error"]
    assert err["code"] == want_code and err["message"] and err["request_id"], err
    assert hdrs.get("x-request-id") == err["request_id"]


@pytest.mark.parametrize("family", ["projects", "users", "service-accounts", "role-bindings",
                                    "credentials", "tokens", "tokens/introspect"])
def test_body_over_one_mib_is_too_large(fx, family):
    before = state(fx, family)
    data = padded(FAMILIES[family][0](fx), MIB + 1)
    assert_raw_error(*send(fx, "POST", API + "/" + family, data), 413, "too_large")
    assert state(fx, family) == before


def test_patch_over_one_mib_is_too_large(fx):
    path = API + "/projects/" + fx.pid
    before = expect(fx.iam.admin.get(path), 200)
    assert_raw_error(*send(fx, "PATCH", path, padded({"description": "big"}, MIB + 1)), 413,
                     "too_large")
    assert expect(fx.iam.admin.get(path), 200) == before


def test_body_of_exactly_one_mib_is_accepted(fx):
    name = unique("p")
    status, _, body = send(fx, "POST", API + "/projects", padded({"name": name}, MIB))
    assert status == 201, body[:300]
    assert json.loads(body)["name"] == name


# --- ids -------------------------------------------------------------------------

PREFIX = {"projects": "proj", "users": "user", "service-accounts": "sa", "role-bindings": "rb",
          "credentials": "ak"}
METHODS = {"projects": ["GET", "PATCH", "DELETE"], "users": ["GET", "PATCH", "DELETE"],
           "service-accounts": ["GET", "DELETE"], "role-bindings": ["DELETE"],
           "credentials": ["GET", "DELETE"]}

PATCH_OK = {"projects": {"description": "x"}, "users": {"display_name": "x"}}


def malformed_ids(prefix):
    good = fresh_id(prefix)
    other = "user" if prefix != "user" else "proj"
    return ["abc", good[:-1], good + "a", prefix + "-" + "A" * 20, prefix + "_" + good[-20:],
            other + "-" + good[-20:], prefix + "-" + "a" * 19 + "!"]


@pytest.mark.parametrize("family", sorted(PREFIX))
def test_malformed_ids_are_invalid(fx, family):
    before = state(fx, family)
    for bad in malformed_ids(PREFIX[family]):
        for method in METHODS[family]:
            kw = {"json": PATCH_OK[family]} if method == "PATCH" else {}
            r = fx.iam.admin.request(method, API + "/%s/%s" % (family, bad), **kw)
            assert r.status_code == 400, "%s %s: %s" % (method, bad, describe(r))
            assert_error(r, 400, "invalid_argument")
    assert state(fx, family) == before


@pytest.mark.parametrize("family", sorted(PREFIX))
def test_unknown_ids_are_not_found(fx, family):
    before = state(fx, family)
    for method in METHODS[family]:
        kw = {"json": PATCH_OK[family]} if method == "PATCH" else {}
        r = fx.iam.admin.request(method, API + "/%s/%s" % (family, fresh_id(PREFIX[family])), **kw)
        assert_error(r, 404, "not_found")
    assert state(fx, family) == before


@pytest.mark.parametrize("query", ["/role-bindings?project_id=nope",
                                   "/role-bindings?principal_id=user-1",
                                   "/service-accounts?project_id=proj-",
                                   "/credentials?principal_id=ak-aaaaaaaaaaaaaaaaaaaa"])
def test_malformed_ids_in_filters_are_invalid(fx, query):
    assert_error(fx.iam.admin.get(API + query), 400, "invalid_argument")


def test_unknown_path_is_not_found(fx):
    assert_error(fx.iam.admin.get(API + "/nothing-here"), 404, "not_found")
    assert_error(fx.iam.admin.get("/api/v2/projects"), 404, "not_found")


# --- methods ---------------------------------------------------------------------

def allow_set(r):
    return {m.strip().upper() for m in r.headers.get("Allow", "").split(",") if m.strip()}


def wrong_methods(fx):
    return [
        ("DELETE", "/projects", {"GET", "POST"}),
        ("PUT", "/projects/" + fx.pid, {"GET", "PATCH", "DELETE"}),
        ("POST", "/projects/" + fx.pid, {"GET", "PATCH", "DELETE"}),
        ("DELETE", "/users", {"GET", "POST"}),
        ("PUT", "/users/" + fx.user.id, {"GET", "PATCH", "DELETE"}),
        ("PATCH", "/service-accounts/" + fx.sa.id, {"GET", "DELETE"}),
        ("PATCH", "/role-bindings/" + fx.rb["id"], {"DELETE"}),
        ("PATCH", "/credentials/" + fx.sa.credential["id"], {"GET", "DELETE"}),
        ("PUT", "/role-bindings", {"GET", "POST"}),
        ("POST", "/keys", {"GET"}),
        ("GET", "/tokens", {"POST"}),
        ("GET", "/tokens/introspect", {"POST"}),
        ("POST", "/whoami", {"GET"}),
        ("POST", "/roles", {"GET"}),
        ("PATCH", "/signing-keys/" + fx.kid, {"DELETE"}),
        ("DELETE", "/signing-keys", {"GET", "POST"}),
    ]


def whole_state(fx):
    get = fx.iam.admin.get
    return [expect(get(API + p), 200) for p in (
        "/projects?limit=1000", "/users?limit=1000", "/service-accounts?limit=1000",
        "/role-bindings?limit=1000", "/credentials?principal_id=" + fx.sa.id, "/signing-keys")]


def test_wrong_method_is_405_with_allow(fx):
    before = whole_state(fx)
    for method, path, allowed in wrong_methods(fx):
        r = fx.iam.admin.request(method, API + path, json={"description": "x"})
        assert r.status_code == 405, "%s %s: %s" % (method, path, describe(r))
        assert_error(r, 405, "method_not_allowed")
        got = allow_set(r)
        assert allowed <= got and method not in got, "%s %s: Allow %r, expected %s" % (
            method, path, r.headers.get("Allow"), sorted(allowed))
    assert whole_state(fx) == before


def test_wrong_method_on_operational_endpoints(fx):
    for path in ("/healthz", "/readyz", "/metrics"):
        r = fx.iam.anon.post(path, data=b"")
        assert_error(r, 405, "method_not_allowed")
        assert "GET" in allow_set(r)
