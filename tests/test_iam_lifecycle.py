"""IAM resources through their whole life: create, list, get, patch,
delete, revisions and conflicts, per docs/api/iam.md and conventions.md."""

import concurrent.futures

import pytest

from iamharness import API, token_claims, unique
from ucharness import assert_error, assert_resource, describe, expect, expect_deleted

pytestmark = pytest.mark.iam


def ids(resp):
    return [item["id"] for item in expect(resp, 200)["items"]]


def list_all(client, path, limit):
    """Follow next_page_token to the end; returns (items, pages)."""
    items, pages, token = [], 0, None
    sep = "&" if "?" in path else "?"
    while True:
        url = "%s%slimit=%d" % (path, sep, limit) + ("&page_token=" + token if token else "")
        body = expect(client.get(url), 200)
        pages += 1
        assert len(body["items"]) <= limit
        items += body["items"]
        token = body.get("next_page_token")
        if not token:
            return items, pages
        assert pages < 100, "pagination does not end"


# --- projects ---------------------------------------------------------------

def test_project_create_get_list(iam):
    p = iam.create_project(name=unique("web"), description="the web tier")
    assert_resource(p, "proj")
    assert p["description"] == "the web tier"
    assert expect(iam.admin.get(API + "/projects/" + p["id"]), 200) == p
    assert p["id"] in ids(iam.admin.get(API + "/projects"))


def test_project_patch_bumps_revision(iam):
    p = iam.create_project(description="one")
    q = expect(iam.admin.patch(API + "/projects/" + p["id"],
                               json={"description": "two", "revision": p["revision"]}), 200)
    assert q["description"] == "two" and q["revision"] > p["revision"]
    assert q["updated_at"] >= p["updated_at"] and q["created_at"] == p["created_at"]
    assert expect(iam.admin.get(API + "/projects/" + p["id"]), 200) == q
    r = expect(iam.admin.patch(API + "/projects/" + p["id"], json={"description": "three"}), 200)
    assert r["description"] == "three" and r["revision"] > q["revision"]


def test_project_patch_with_stale_revision_conflicts(iam):
    p = iam.create_project(description="one")
    q = expect(iam.admin.patch(API + "/projects/" + p["id"], json={"description": "two"}), 200)
    r = iam.admin.patch(API + "/projects/" + p["id"],
                        json={"description": "stale", "revision": p["revision"]})
    assert_error(r, 409, "conflict")
    assert expect(iam.admin.get(API + "/projects/" + p["id"]), 200) == q


def test_project_duplicate_name_conflicts(iam):
    p = iam.create_project()
    before = ids(iam.admin.get(API + "/projects"))
    assert_error(iam.admin.post(API + "/projects", json={"name": p["name"]}), 409,
                 "already_exists")
    assert ids(iam.admin.get(API + "/projects")) == before


def test_project_delete_with_bindings_is_busy(iam):
    user = iam.new_user("member")
    pid = user.project_id
    rb = expect(iam.admin.get(API + "/role-bindings?project_id=" + pid), 200)["items"]
    assert len(rb) == 1
    assert_error(iam.admin.delete(API + "/projects/" + pid), 409, "busy")
    expect(iam.admin.get(API + "/projects/" + pid), 200)
    expect_deleted(iam.admin.delete(API + "/role-bindings/" + rb[0]["id"]))
    expect_deleted(iam.admin.delete(API + "/projects/" + pid))
    assert_error(iam.admin.get(API + "/projects/" + pid), 404, "not_found")
    assert pid not in ids(iam.admin.get(API + "/projects"))


def test_project_delete_with_service_accounts_is_busy(iam):
    pid = iam.create_project()["id"]
    sa = iam.create_service_account(pid)
    assert_error(iam.admin.delete(API + "/projects/" + pid), 409, "busy")
    expect_deleted(iam.admin.delete(API + "/service-accounts/" + sa.id))
    expect_deleted(iam.admin.delete(API + "/projects/" + pid))


def test_project_admin_may_patch_but_not_delete(iam):
    admin = iam.new_user("admin")
    pid = admin.project_id
    q = expect(admin.client.patch(API + "/projects/" + pid, json={"description": "mine"}), 200)
    assert q["description"] == "mine"
    assert_error(admin.client.delete(API + "/projects/" + pid), 403, "permission_denied")
    member = iam.new_user("member", pid)
    assert_error(member.client.patch(API + "/projects/" + pid, json={"description": "x"}), 403,
                 "permission_denied")
    assert expect(iam.admin.get(API + "/projects/" + pid), 200)["description"] == "mine"


def test_project_list_paginates(iam):
    made = {iam.create_project()["id"] for _ in range(5)}
    items, pages = list_all(iam.admin, API + "/projects", 2)
    got = [p["id"] for p in items]
    assert len(got) == len(set(got)), "a project appears on two pages"
    assert made <= set(got) and pages >= 3
    first = expect(iam.admin.get(API + "/projects?limit=1000"), 200)
    assert "next_page_token" not in first or not first["next_page_token"]


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "ten"])
def test_list_limit_out_of_range_is_invalid(iam, limit):
    assert_error(iam.admin.get(API + "/projects?limit=" + limit), 400, "invalid_argument")


# --- users -------------------------------------------------------------------

def test_user_create_get_list_never_shows_password(iam):
    user = iam.create_user(display_name="Alice A.")
    assert_resource(user.obj, "user")
    assert user.obj["display_name"] == "Alice A." and user.obj["disabled"] is False
    got = iam.admin.get(API + "/users/" + user.id)
    listed = iam.admin.get(API + "/users")
    for r in (got, listed):
        expect(r, 200)
        assert user.password not in r.text and "password" not in r.text and "scrypt" not in r.text
    assert user.id in [u["id"] for u in listed.json()["items"]]


def test_user_duplicate_name_conflicts(iam):
    user = iam.create_user()
    r = iam.admin.post(API + "/users", json={"name": user.name, "password": "another-pw"})
    assert_error(r, 409, "already_exists")
    assert [u["name"] for u in iam.admin.get(API + "/users").json()["items"]].count(user.name) == 1


def test_user_reads_itself_but_not_others(iam):
    alice = iam.new_user("member")
    bob = iam.create_user()
    assert expect(alice.client.get(API + "/users/" + alice.id), 200)["id"] == alice.id
    r = alice.client.get(API + "/users/" + bob.id)
    assert r.status_code in (403, 404), describe(r)
    assert_error(r, r.status_code)
    assert_error(alice.client.get(API + "/users"), 403, "permission_denied")


def test_user_changes_own_display_name_and_password(iam):
    alice = iam.new_user("member")
    r = expect(alice.client.patch(API + "/users/" + alice.id,
                                  json={"display_name": "Al", "password": "new-password-1"}), 200)
    assert r["display_name"] == "Al" and r["revision"] > alice.obj["revision"]
    assert "new-password-1" not in str(r)
    assert_error(iam.login(alice.name, alice.password), 401, "unauthenticated")
    expect(iam.login(alice.name, "new-password-1", alice.project_id), 201)


def test_user_cannot_disable_itself(iam):
    alice = iam.new_user("admin")
    assert_error(alice.client.patch(API + "/users/" + alice.id, json={"disabled": True}), 403,
                 "permission_denied")
    assert expect(iam.admin.get(API + "/users/" + alice.id), 200)["disabled"] is False


def test_user_patch_with_stale_revision_conflicts(iam):
    user = iam.create_user(display_name="a")
    cur = expect(iam.admin.patch(API + "/users/" + user.id, json={"display_name": "b"}), 200)
    r = iam.admin.patch(API + "/users/" + user.id,
                        json={"display_name": "c", "revision": user.obj["revision"]})
    assert_error(r, 409, "conflict")
    assert expect(iam.admin.get(API + "/users/" + user.id), 200) == cur


def test_user_delete_removes_bindings_and_revokes_credentials(iam):
    alice = iam.new_user("member")
    cred = iam.create_credential(alice.id, client=alice.client)
    expect(iam.key_login(cred["id"], cred["secret"]), 201)
    expect_deleted(iam.admin.delete(API + "/users/" + alice.id))
    assert_error(iam.admin.get(API + "/users/" + alice.id), 404, "not_found")
    rbs = expect(iam.admin.get(API + "/role-bindings?principal_id=" + alice.id), 200)["items"]
    assert rbs == []
    assert_error(iam.key_login(cred["id"], cred["secret"]), 401, "unauthenticated")
    r = iam.admin.get(API + "/credentials/" + cred["id"])
    if r.status_code == 200:
        assert r.json()["status"] == "revoked"
    else:
        assert_error(r, 404, "not_found")
    assert_error(iam.login(alice.name, alice.password), 401, "unauthenticated")
    info = expect(iam.admin.post(API + "/tokens/introspect", json={"token": alice.token}), 200)
    assert info == {"active": False}
    expect_deleted(iam.admin.delete(API + "/projects/" + alice.project_id))


# --- service accounts --------------------------------------------------------

def test_service_account_lifecycle_by_project_admin(iam):
    admin = iam.new_user("admin")
    pid = admin.project_id
    sa = iam.create_service_account(pid, name="ci", client=admin.client)
    assert_resource(sa.obj, "sa")
    assert sa.obj["project_id"] == pid and sa.obj["name"] == "ci"
    reader = iam.new_user("reader", pid)
    assert expect(reader.client.get(API + "/service-accounts/" + sa.id), 200) == sa.obj
    assert ids(admin.client.get(API + "/service-accounts")) == [sa.id]
    assert sa.id in ids(iam.admin.get(API + "/service-accounts?project_id=" + pid))
    assert sa.id in ids(iam.admin.get(API + "/service-accounts"))
    expect_deleted(admin.client.delete(API + "/service-accounts/" + sa.id))
    assert_error(admin.client.get(API + "/service-accounts/" + sa.id), 404, "not_found")


def test_service_account_name_unique_within_project(iam):
    p1, p2 = iam.create_project()["id"], iam.create_project()["id"]
    iam.create_service_account(p1, name="deploy")
    r = iam.admin.post(API + "/service-accounts", json={"name": "deploy", "project_id": p1})
    assert_error(r, 409, "already_exists")
    assert len(ids(iam.admin.get(API + "/service-accounts?project_id=" + p1))) == 1
    iam.create_service_account(p2, name="deploy")


def test_service_account_delete_removes_bindings_and_revokes_credentials(iam):
    pid = iam.create_project()["id"]
    sa = iam.new_service_account(pid)
    expect_deleted(iam.admin.delete(API + "/service-accounts/" + sa.id))
    assert expect(iam.admin.get(API + "/role-bindings?principal_id=" + sa.id), 200)["items"] == []
    assert_error(iam.key_login(sa.credential["id"], sa.credential["secret"]), 401,
                 "unauthenticated")
    info = expect(iam.admin.post(API + "/tokens/introspect", json={"token": sa.token}), 200)
    assert info == {"active": False}
    expect_deleted(iam.admin.delete(API + "/projects/" + pid))


# --- roles and role bindings -------------------------------------------------

def test_roles_lists_the_four_roles(iam):
    body = expect(iam.admin.get(API + "/roles"), 200)
    items = body["items"]
    for role in ("reader", "member", "admin", "system-admin"):
        assert any(role in (i.get("name"), i.get("id"), i.get("role")) for i in items), \
            "role %s missing from %s" % (role, items)


def test_role_binding_lifecycle(iam):
    admin = iam.new_user("admin")
    pid = admin.project_id
    bob = iam.create_user()
    rb = iam.bind(bob.id, "reader", pid, client=admin.client)
    assert_resource(rb, "rb")
    assert (rb["principal_id"], rb["project_id"], rb["role"]) == (bob.id, pid, "reader")
    own = ids(iam.admin.get(API + "/role-bindings?principal_id=" + admin.id))
    listed = ids(admin.client.get(API + "/role-bindings?project_id=" + pid))
    assert sorted(listed) == sorted(own + [rb["id"]])
    assert ids(iam.admin.get(API + "/role-bindings?principal_id=" + bob.id)) == [rb["id"]]
    tok = expect(iam.login(bob.name, bob.password, pid), 201)
    assert tok["roles"] == ["reader"]
    expect_deleted(admin.client.delete(API + "/role-bindings/" + rb["id"]))
    assert ids(iam.admin.get(API + "/role-bindings?principal_id=" + bob.id)) == []
    assert_error(iam.login(bob.name, bob.password, pid), 403, "permission_denied")


def test_second_binding_in_same_project_conflicts(iam):
    user = iam.new_user("member")
    r = iam.admin.post(API + "/role-bindings", json={"principal_id": user.id,
                                                      "project_id": user.project_id,
                                                      "role": "admin"})
    assert_error(r, 409, "already_exists")
    rbs = expect(iam.admin.get(API + "/role-bindings?principal_id=" + user.id), 200)["items"]
    assert [b["role"] for b in rbs] == ["member"]


def test_system_admin_binding_only_by_system_admin(iam):
    admin = iam.new_user("admin")
    bob = iam.create_user()
    r = admin.client.post(API + "/role-bindings",
                          json={"principal_id": bob.id, "role": "system-admin"})
    assert_error(r, 403, "permission_denied")
    assert ids(iam.admin.get(API + "/role-bindings?principal_id=" + bob.id)) == []


# --- credentials -------------------------------------------------------------

def test_credential_lifecycle_for_own_user(iam):
    alice = iam.new_user("member")
    cred = iam.create_credential(alice.id, client=alice.client, description="laptop")
    assert_resource(cred, "ak")
    assert cred["principal_id"] == alice.id and cred["status"] == "active"
    assert cred["revoked_at"] is None and cred["description"] == "laptop"
    secret = cred["secret"]
    assert isinstance(secret, str) and len(secret) >= 16
    got = alice.client.get(API + "/credentials/" + cred["id"])
    listed = alice.client.get(API + "/credentials?principal_id=" + alice.id)
    for r in (got, listed):
        expect(r, 200)
        assert secret not in r.text and '"secret"' not in r.text, describe(r)
    assert [c["id"] for c in listed.json()["items"]] == [cred["id"]]
    expect_deleted(alice.client.delete(API + "/credentials/" + cred["id"]))
    after = expect(alice.client.get(API + "/credentials/" + cred["id"]), 200)
    assert after["status"] == "revoked" and after["revoked_at"]
    assert after["revision"] > cred["revision"]


def test_user_cannot_make_credentials_for_another_user(iam):
    alice = iam.new_user("admin")
    bob = iam.new_user("member", alice.project_id)
    r = alice.client.post(API + "/credentials", json={"principal_id": bob.id})
    assert r.status_code in (403, 404), r.text
    assert_error(r, r.status_code)
    assert expect(iam.admin.get(API + "/credentials?principal_id=" + bob.id), 200)["items"] == []


def test_project_admin_manages_credentials_of_its_service_accounts(iam):
    admin = iam.new_user("admin")
    member = iam.new_user("member", admin.project_id)
    sa = iam.create_service_account(admin.project_id, client=admin.client)
    iam.bind(sa.id, "reader", admin.project_id, client=admin.client)
    cred = iam.create_credential(sa.id, client=admin.client)
    tok = expect(iam.key_login(cred["id"], cred["secret"]), 201)
    assert tok["subject"] == sa.id and tok["roles"] == ["reader"]
    assert ids(admin.client.get(API + "/credentials?principal_id=" + sa.id)) == [cred["id"]]
    assert_error(member.client.post(API + "/credentials", json={"principal_id": sa.id}), 403,
                 "permission_denied")
    assert_error(member.client.delete(API + "/credentials/" + cred["id"]), 403,
                 "permission_denied")
    expect(iam.key_login(cred["id"], cred["secret"]), 201)
    expect_deleted(admin.client.delete(API + "/credentials/" + cred["id"]))
    assert_error(iam.key_login(cred["id"], cred["secret"]), 401, "unauthenticated")


def test_access_key_of_a_user_logs_in_as_that_user(iam):
    alice = iam.new_user("member")
    cred = iam.create_credential(alice.id, client=alice.client)
    tok = expect(iam.key_login(cred["id"], cred["secret"], alice.project_id), 201)
    c = token_claims(tok["token"])
    assert (c["sub"], c["kind"], c["name"], c["project"], c["roles"]) == (
        alice.id, "user", alice.name, alice.project_id, ["member"])


def test_system_binding_is_deleted_only_by_system_admin(iam):
    admin = iam.new_user("admin")
    boss = iam.create_user()
    rb = iam.bind(boss.id, "system-admin")
    r = admin.client.delete(API + "/role-bindings/" + rb["id"])
    assert r.status_code in (403, 404), describe(r)
    assert_error(r, r.status_code)
    assert ids(iam.admin.get(API + "/role-bindings?principal_id=" + boss.id)) == [rb["id"]]
    expect_deleted(iam.admin.delete(API + "/role-bindings/" + rb["id"]))
    assert expect(iam.login(boss.name, boss.password), 201)["system_admin"] is False


def test_concurrent_creates_of_one_name_yield_one_project(iam):
    name = unique("race")

    def create(_):
        c = iam.client(iam.bootstrap_token)
        try:
            return c.post(API + "/projects", json={"name": name})
        finally:
            c.close()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, range(8)))
    codes = sorted(r.status_code for r in results)
    assert codes == [201] + [409] * 7, [describe(r) for r in results]
    for r in results:
        if r.status_code == 409:
            assert_error(r, 409, "already_exists")
    names = [p["name"] for p in expect(iam.admin.get(API + "/projects?limit=1000"), 200)["items"]]
    assert names.count(name) == 1


def test_concurrent_creates_all_land(iam):
    names = [unique("many") for _ in range(24)]

    def create(name):
        c = iam.client(iam.bootstrap_token)
        try:
            return c.post(API + "/projects", json={"name": name}).status_code
        finally:
            c.close()

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert list(pool.map(create, names)) == [201] * len(names)
    listed = {p["name"] for p in expect(iam.admin.get(API + "/projects?limit=1000"), 200)["items"]}
    assert set(names) <= listed
