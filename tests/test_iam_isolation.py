"""Tenant isolation and role checks: a token of one project never sees
another project's objects (404) and low roles cannot write (403)."""

import pytest

from iamharness import API, unique
from ucharness import assert_error, describe, expect

pytestmark = pytest.mark.iam


class World:
    """Projects A and B, each with an admin, a member, a reader, a service
    account with a credential, and the bindings that go with them."""

    def __init__(self, iam):
        self.iam = iam
        for tag in ("a", "b"):
            pid = iam.create_project(name=unique("proj" + tag))["id"]
            admin = iam.new_user("admin", pid)
            member = iam.new_user("member", pid)
            reader = iam.new_user("reader", pid)
            sa = iam.new_service_account(pid)
            rbs = expect(iam.admin.get(API + "/role-bindings?project_id=" + pid), 200)["items"]
            setattr(self, tag, type("P", (), dict(pid=pid, admin=admin, member=member,
                                                  reader=reader, sa=sa, rbs=rbs))())


@pytest.fixture(scope="module")
def world(iam_shared):
    return World(iam_shared)


def snapshot(iam, pid):
    get = iam.admin.get
    return (expect(get(API + "/projects/" + pid), 200),
            expect(get(API + "/service-accounts?project_id=" + pid), 200)["items"],
            expect(get(API + "/role-bindings?project_id=" + pid), 200)["items"])


@pytest.mark.parametrize("role", ["admin", "member", "reader"])
def test_other_projects_objects_are_not_found(world, role):
    me = getattr(world.a, role).client
    b = world.b
    before = snapshot(world.iam, b.pid)
    assert_error(me.get(API + "/projects/" + b.pid), 404, "not_found")
    assert_error(me.patch(API + "/projects/" + b.pid, json={"description": "x"}), 404,
                 "not_found")
    assert_error(me.get(API + "/service-accounts/" + b.sa.id), 404, "not_found")
    assert_error(me.delete(API + "/service-accounts/" + b.sa.id), 404, "not_found")
    for rb in b.rbs:
        assert_error(me.delete(API + "/role-bindings/" + rb["id"]), 404, "not_found")
    assert_error(me.get(API + "/credentials/" + b.sa.credential["id"]), 404, "not_found")
    assert_error(me.delete(API + "/credentials/" + b.sa.credential["id"]), 404, "not_found")
    assert snapshot(world.iam, b.pid) == before
    expect(world.iam.key_login(b.sa.credential["id"], b.sa.credential["secret"]), 201)


@pytest.mark.parametrize("path", ["/role-bindings?project_id=", "/service-accounts?project_id="])
def test_filtering_on_another_project_shows_nothing(world, path):
    r = world.a.admin.client.get(API + path + world.b.pid)
    if r.status_code == 200:
        assert r.json()["items"] == [], describe(r)
    else:
        assert_error(r, 404, "not_found")


def test_credentials_of_another_projects_account_are_hidden(world):
    r = world.a.admin.client.get(API + "/credentials?principal_id=" + world.b.sa.id)
    if r.status_code == 200:
        assert r.json()["items"] == [], describe(r)
    else:
        assert r.status_code in (403, 404), describe(r)
        assert_error(r, r.status_code)
    r = world.a.admin.client.post(API + "/credentials", json={"principal_id": world.b.sa.id})
    assert r.status_code in (403, 404), describe(r)
    assert_error(r, r.status_code)
    items = expect(world.iam.admin.get(API + "/credentials?principal_id=" + world.b.sa.id),
                   200)["items"]
    assert [c["id"] for c in items] == [world.b.sa.credential["id"]]


def test_admin_cannot_create_in_another_project(world):
    me = world.a.admin.client
    before = snapshot(world.iam, world.b.pid)
    r = me.post(API + "/service-accounts", json={"name": unique("sa"), "project_id": world.b.pid})
    assert r.status_code in (403, 404), describe(r)
    assert_error(r, r.status_code)
    r = me.post(API + "/role-bindings", json={"principal_id": world.a.member.id,
                                              "project_id": world.b.pid, "role": "admin"})
    assert r.status_code in (403, 404), describe(r)
    assert_error(r, r.status_code)
    assert snapshot(world.iam, world.b.pid) == before


def test_lists_show_only_own_project(world):
    a = world.a
    for who in (a.admin, a.member, a.reader):
        c = who.client
        assert [p["id"] for p in expect(c.get(API + "/projects"), 200)["items"]] == [a.pid]
        sas = expect(c.get(API + "/service-accounts"), 200)["items"]
        assert [s["id"] for s in sas] == [a.sa.id]
        rbs = expect(c.get(API + "/role-bindings"), 200)["items"]
        assert rbs and {rb["project_id"] for rb in rbs} == {a.pid}
        assert sorted(rb["id"] for rb in rbs) == sorted(rb["id"] for rb in a.rbs)


def test_reader_cannot_create(world):
    a = world.a
    me = a.reader.client
    before = snapshot(world.iam, a.pid)
    assert_error(me.post(API + "/service-accounts", json={"name": unique("sa"),
                                                          "project_id": a.pid}),
                 403, "permission_denied")
    assert_error(me.post(API + "/role-bindings", json={"principal_id": a.reader.id,
                                                       "project_id": a.pid, "role": "admin"}),
                 403, "permission_denied")
    assert_error(me.post(API + "/credentials", json={"principal_id": a.sa.id}), 403,
                 "permission_denied")
    assert_error(me.patch(API + "/projects/" + a.pid, json={"description": "r"}), 403,
                 "permission_denied")
    assert_error(me.post(API + "/projects", json={"name": unique("p")}), 403,
                 "permission_denied")
    assert snapshot(world.iam, a.pid) == before


def test_member_cannot_create_service_accounts_or_bindings(world):
    a = world.a
    me = a.member.client
    before = snapshot(world.iam, a.pid)
    assert_error(me.post(API + "/service-accounts", json={"name": unique("sa"),
                                                          "project_id": a.pid}),
                 403, "permission_denied")
    assert_error(me.post(API + "/role-bindings", json={"principal_id": a.member.id,
                                                       "project_id": a.pid, "role": "admin"}),
                 403, "permission_denied")
    for rb in a.rbs:
        assert_error(me.delete(API + "/role-bindings/" + rb["id"]), 403, "permission_denied")
    assert_error(me.delete(API + "/service-accounts/" + a.sa.id), 403, "permission_denied")
    assert snapshot(world.iam, a.pid) == before


def test_non_system_admins_cannot_manage_users_or_projects(world):
    me = world.a.admin.client
    assert_error(me.get(API + "/users"), 403, "permission_denied")
    assert_error(me.post(API + "/users", json={"name": unique("u"), "password": "longenough"}),
                 403, "permission_denied")
    assert_error(me.post(API + "/projects", json={"name": unique("p")}), 403,
                 "permission_denied")
    assert_error(me.delete(API + "/projects/" + world.a.pid), 403, "permission_denied")
    r = me.patch(API + "/users/" + world.a.member.id, json={"disabled": True})
    assert r.status_code in (403, 404), describe(r)
    assert_error(r, r.status_code)
    assert expect(world.iam.admin.get(API + "/users/" + world.a.member.id), 200)["disabled"] \
        is False


def test_service_account_token_is_scoped_to_its_project(world):
    me = world.a.sa.client
    assert_error(me.get(API + "/projects/" + world.b.pid), 404, "not_found")
    assert_error(me.get(API + "/service-accounts/" + world.b.sa.id), 404, "not_found")
    assert [p["id"] for p in expect(me.get(API + "/projects"), 200)["items"]] == [world.a.pid]
