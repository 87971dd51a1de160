"""IAM start-up: option refusals, --help, operational endpoints, request ids
and the bootstrap token creating the first admin (docs/api/iam.md)."""

import re
import time

import pytest

from iamharness import API, master_key_bytes, token_claims, unique, write_secret
from ucharness import (assert_error, daemon_env, expect, free_port, metric_sum,
                       parse_metrics, run_once, wait_for)

pytestmark = pytest.mark.iam


def without(args, flag):
    """args minus `flag` and its value."""
    i = args.index(flag)
    return args[:i] + args[i + 2:]


def replace(args, flag, value):
    i = args.index(flag)
    return args[:i + 1] + [value] + args[i + 2:]


def assert_refused(inst, args, pattern, env=None):
    """The daemon exits 2 with exactly one stderr line matching `pattern`."""
    args = args + ["--listen", "127.0.0.1", "--port", str(free_port())]
    cp = run_once(inst.daemon.binary, args, env=env or daemon_env(("UC_", "IAM_")))
    lines = [line for line in cp.stderr_text.splitlines() if line.strip()]
    assert cp.returncode == 2, "exit %s, expected 2; stderr:\n%s" % (cp.returncode, cp.stderr_text)
    assert len(lines) == 1, "expected one stderr line, got %d:\n%s" % (len(lines), cp.stderr_text)
    assert re.search(pattern, lines[0], re.I), "%r does not name the problem (%s)" % (
        lines[0], pattern)


@pytest.fixture
def files(iam_factory):
    """An Iam with its key, token and master key files, not started."""
    return iam_factory(start=False)


# --- start-up refusals -----------------------------------------------------

@pytest.mark.startup
def test_missing_signing_key_flag_refuses(files):
    assert_refused(files, without(files.args(), "--signing-key-file"), r"signing.key")


@pytest.mark.startup
def test_nonexistent_signing_key_file_refuses(files):
    args = replace(files.args(), "--signing-key-file", files.dir + "/nope.pem")
    assert_refused(files, args, r"signing.key|nope\.pem")


@pytest.mark.startup
def test_rsa_signing_key_refuses(files):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    write_secret(files.key_path, pem)
    assert_refused(files, files.args(), r"signing.key|ed25519")


@pytest.mark.startup
def test_garbage_signing_key_refuses(files):
    write_secret(files.key_path, b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    assert_refused(files, files.args(), r"signing.key|ed25519")


@pytest.mark.startup
def test_missing_bootstrap_token_flag_refuses(files):
    assert_refused(files, without(files.args(), "--bootstrap-token-file"), r"bootstrap")


@pytest.mark.startup
def test_nonexistent_bootstrap_token_file_refuses(files):
    args = replace(files.args(), "--bootstrap-token-file", files.dir + "/nope.token")
    assert_refused(files, args, r"bootstrap|nope\.token")


@pytest.mark.startup
@pytest.mark.parametrize("token", ["a" * 31, "b" * 31 + "\n", ""])
def test_short_bootstrap_token_refuses(files, token):
    write_secret(files.token_path, token)
    assert_refused(files, files.args(), r"bootstrap")


@pytest.mark.startup
def test_missing_master_key_refuses(files):
    assert_refused(files, without(files.args(), "--cred-master-key-file"), r"master")


@pytest.mark.startup
@pytest.mark.parametrize("size", [31, 33, 0, 64])
def test_master_key_of_wrong_length_refuses(files, size):
    write_secret(files.master_key_path, master_key_bytes(size) if size else b"")
    if size == 64:  # 64 bytes that are not hex digits
        write_secret(files.master_key_path, b"z" * 64)
    assert_refused(files, files.args(), r"master")


@pytest.mark.startup
def test_master_key_env_of_wrong_length_refuses(files):
    env = daemon_env(("UC_", "IAM_"), {"IAM_CRED_MASTER_KEY": "ab" * 31})
    assert_refused(files, without(files.args(), "--cred-master-key-file"), r"master", env=env)


@pytest.mark.startup
@pytest.mark.parametrize("ttl", ["59", "86401", "abc"])
def test_token_ttl_out_of_range_refuses(files, ttl):
    assert_refused(files, files.args() + ["--token-ttl", ttl], r"token.ttl")


@pytest.mark.startup
def test_help_lists_every_option(files):
    cp = run_once(files.daemon.binary, ["--help"], env=daemon_env(("UC_", "IAM_")))
    assert cp.returncode == 0, cp.stderr_text
    for opt in ("--listen", "--port", "--store", "--signing-key-file", "--bootstrap-token-file",
                "--cred-master-key-file", "--token-ttl", "--token-rate", "--threads",
                "--log-level", "--access-log"):
        assert opt in cp.stdout_text, "--help does not list %s:\n%s" % (opt, cp.stdout_text)


# --- accepted variants of the secret files -------------------------------

@pytest.mark.startup
def test_master_key_as_hex_with_newline_starts(files):
    write_secret(files.master_key_path, master_key_bytes().hex() + "\n")
    files.start()
    expect(files.admin.get(API + "/projects"), 200)


@pytest.mark.startup
def test_master_key_from_environment_starts(files):
    files.daemon.env["IAM_CRED_MASTER_KEY"] = master_key_bytes().hex()
    files.daemon.args = without(files.args(), "--cred-master-key-file")
    files.daemon.start()
    expect(files.admin.get(API + "/projects"), 200)


@pytest.mark.startup
def test_bootstrap_token_of_32_chars_with_newline_starts(files):
    files.bootstrap_token = "T" * 32
    write_secret(files.token_path, files.bootstrap_token + "\n")
    files.start()
    expect(files.client(files.bootstrap_token).get(API + "/projects"), 200)
    assert_error(files.client(files.bootstrap_token[:-1]).get(API + "/projects"), 401,
                 "unauthenticated")


@pytest.mark.startup
def test_options_from_environment(files):
    files.daemon.env["UC_IAM_TOKEN_TTL"] = "300"
    files.start()
    user = files.new_user("reader")
    c = token_claims(user.token)
    assert c["exp"] - c["iat"] == 300


# --- operational endpoints -------------------------------------------------

def test_healthz_and_readyz(iam):
    assert expect(iam.anon.get("/healthz"), 200) == {"status": "ok"}
    assert expect(iam.anon.get("/readyz"), 200) == {"status": "ready"}


def test_metrics_counters_move(iam):
    def scrape():
        r = iam.anon.get("/metrics")
        assert r.status_code == 200, r.text
        assert r.headers.get("Content-Type", "").startswith("text/plain"), r.headers
        return parse_metrics(r.text)

    def keys_route(route):
        return route.endswith("keys") and "signing" not in route

    before = scrape()
    for _ in range(3):
        expect(iam.anon.get(API + "/keys"), 200)
    for _ in range(2):
        assert_error(iam.admin.get(API + "/projects/proj-aaaaaaaaaaaaaaaaaaaa"), 404)
    # A request is counted when its connection completes, just after the
    # answer went out: scrape until the last one has landed.
    state = {}

    def counted():
        state["after"] = scrape()
        return (metric_sum(state["after"], "uc_http_requests_total", status="404") -
                metric_sum(before, "uc_http_requests_total", status="404")) >= 2
    wait_for(counted, timeout=5.0)
    after = state["after"]

    names = {name for name, _ in after}
    for name in ("uc_http_requests_total", "uc_http_request_duration_seconds_bucket",
                 "uc_http_request_duration_seconds_count", "uc_http_requests_in_flight"):
        assert name in names, "missing metric %s in %s" % (name, sorted(names))
    assert any(n.startswith("process_") for n in names), "no process figures: %s" % sorted(names)

    def delta(name, **labels):
        return metric_sum(after, name, **labels) - metric_sum(before, name, **labels)

    assert delta("uc_http_requests_total", route=keys_route, method="GET", status="200") == 3
    assert delta("uc_http_requests_total", status="404") == 2
    assert delta("uc_http_request_duration_seconds_count", route=keys_route) == 3
    assert metric_sum(after, "uc_http_requests_in_flight") >= 0


# --- request ids -----------------------------------------------------------

def test_request_id_is_echoed_in_header_and_error(iam):
    rid = "test-Rid_0.9"
    r = iam.anon.get(API + "/keys", headers={"X-Request-Id": rid})
    assert r.status_code == 200 and r.headers.get("X-Request-Id") == rid
    r = iam.admin.get(API + "/projects/proj-aaaaaaaaaaaaaaaaaaaa", headers={"X-Request-Id": rid})
    assert_error(r, 404, "not_found", request_id=rid)
    long_rid = "x" * 64
    r = iam.anon.get(API + "/keys", headers={"X-Request-Id": long_rid})
    assert r.headers.get("X-Request-Id") == long_rid


@pytest.mark.parametrize("bad", ["x" * 65, "has space", "semi;colon"])
def test_invalid_request_id_is_replaced(iam, bad):
    r = iam.anon.get(API + "/keys", headers={"X-Request-Id": bad})
    assert r.status_code == 200
    got = r.headers.get("X-Request-Id")
    assert got and got != bad and re.fullmatch(r"[A-Za-z0-9._-]{1,64}", got), got


# --- bootstrap -------------------------------------------------------------

def test_bootstrap_token_creates_first_admin(iam):
    project = iam.create_project(description="first")
    assert project["id"].startswith("proj-") and project["name"]
    user = iam.create_user()
    assert user.id.startswith("user-")
    rb = iam.bind(user.id, "admin", project["id"])
    assert rb["id"].startswith("rb-")
    assert (rb["principal_id"], rb["project_id"], rb["role"]) == (user.id, project["id"], "admin")

    tok = expect(iam.login(user.name, user.password, project["id"]), 201)
    me = expect(iam.client(tok["token"]).get(API + "/whoami"), 200)
    assert me["sub"] == user.id and me["name"] == user.name and me["kind"] == "user"
    assert me["project"] == project["id"] and me["roles"] == ["admin"] and me["sys"] is False
    info = expect(iam.client(tok["token"]).post(API + "/tokens/introspect",
                                                json={"token": tok["token"]}), 200)
    assert info["active"] is True and info["sub"] == user.id


def test_bootstrap_can_make_a_system_admin(iam):
    user = iam.create_user()
    rb = iam.bind(user.id, "system-admin")
    assert rb["role"] == "system-admin" and rb.get("project_id") is None
    tok = expect(iam.login(user.name, user.password), 201)
    assert tok["system_admin"] is True
    admin = iam.client(tok["token"])
    assert expect(admin.get(API + "/whoami"), 200)["sys"] is True
    expect(admin.post(API + "/projects", json={"name": unique("p")}), 201)


def test_bootstrap_token_whoami_is_bootstrap_subject(iam):
    me = expect(iam.admin.get(API + "/whoami"), 200)
    assert me["sub"] == "bootstrap" and me["sys"] is True


def test_wrong_or_missing_bootstrap_token_is_unauthenticated(iam):
    body = {"name": unique("p")}
    assert_error(iam.anon.post(API + "/projects", json=body), 401, "unauthenticated")
    wrong = iam.bootstrap_token[:-1] + ("A" if iam.bootstrap_token[-1] != "A" else "B")
    assert_error(iam.client(wrong).post(API + "/projects", json=body), 401, "unauthenticated")
    assert_error(iam.client(iam.bootstrap_token + "x").post(API + "/projects", json=body), 401,
                 "unauthenticated")
    assert_error(iam.client(iam.bootstrap_token[:32]).post(API + "/projects", json=body), 401,
                 "unauthenticated")
    r = iam.anon.post(API + "/projects", json=body,
                      headers={"Authorization": "Basic " + iam.bootstrap_token})
    assert_error(r, 401, "unauthenticated")
    names = [p["name"] for p in expect(iam.admin.get(API + "/projects"), 200)["items"]]
    assert body["name"] not in names


def test_access_log_line_carries_the_request_id(iam_factory):
    iam = iam_factory(args=["--access-log"])
    rid = "trace-me-" + unique("r")
    expect(iam.anon.get(API + "/keys", headers={"X-Request-Id": rid}), 200)
    assert_error(iam.admin.get(API + "/projects/proj-aaaaaaaaaaaaaaaaaaaa",
                               headers={"X-Request-Id": rid + "-404"}), 404)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = iam.daemon.stderr_text()
        if rid in text and rid + "-404" in text:
            break
        time.sleep(0.05)
    lines = iam.daemon.stderr_text().splitlines()
    assert [line for line in lines if rid in line and "-404" not in line], "no log line with %s" % rid
    assert [line for line in lines if rid + "-404" in line and "404" in line.replace(rid, "")], \
        "no log line with %s-404 and its status" % rid
