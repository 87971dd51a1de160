"""iamharness - an IAM daemon for integration tests (docs/api/iam.md).

Iam writes a fresh Ed25519 signing key, bootstrap token and master key into
a directory, runs build/bin/iam on a SQLite store there, and offers helpers
that create projects, users, bindings and credentials through the API.
"""

import base64
import itertools
import json
import os
import secrets
import string

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from ucharness import Client, Daemon, binary, daemon_env, expect

API = "/api/v1"
_names = itertools.count(1)


def unique(prefix):
    """A fresh lowercase name valid for projects, users and service accounts."""
    return "%s-%d-%s" % (prefix, next(_names), secrets.token_hex(3))


def ed25519_pem():
    """(PKCS#8 PEM bytes, private key object) for a new Ed25519 key."""
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return pem, key


def raw_public(key):
    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


def raw_private(key):
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def token_header(token):
    return json.loads(b64url_decode(token.split(".")[0]))


def token_claims(token):
    return json.loads(b64url_decode(token.split(".")[1]))


def master_key_bytes(n=32):
    """n random bytes that do not end in a newline (a trailing newline is
    ignored by the daemon, which would change the length)."""
    while True:
        key = secrets.token_bytes(n)
        if not key.endswith(b"\n"):
            return key


def write_secret(path, data):
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(path, 0o600)
    return str(path)


class Principal:
    """A user or service account with a token for one project."""

    def __init__(self, obj, password=None, project_id=None, role=None, token=None, client=None):
        self.obj = obj
        self.id = obj["id"]
        self.name = obj["name"]
        self.password = password
        self.project_id = project_id
        self.role = role
        self.token = token
        self.client = client


class Iam:
    """One IAM daemon and its files under `workdir`."""

    def __init__(self, workdir, extra_args=(), scrypt_log_n=10):
        self.dir = str(workdir)
        self.key_pem, self.key = ed25519_pem()
        self.key_path = write_secret(os.path.join(self.dir, "signing.pem"), self.key_pem)
        self.bootstrap_token = "".join(secrets.choice(string.ascii_letters + string.digits)
                                       for _ in range(40))
        self.token_path = write_secret(os.path.join(self.dir, "bootstrap.token"),
                                       self.bootstrap_token)
        self.master_key = master_key_bytes()
        self.master_key_path = write_secret(os.path.join(self.dir, "master.key"),
                                            self.master_key)
        self.db_path = os.path.join(self.dir, "iam.db")
        self.extra_args = list(extra_args)
        self.scrypt_log_n = scrypt_log_n
        self.daemon = Daemon(binary("iam"), self.args(), self.dir, name="iam",
                             env=daemon_env(("UC_", "IAM_")))
        self.admin = Client(self.daemon, self.bootstrap_token)
        self.anon = Client(self.daemon)

    def args(self):
        return ["--store", "sqlite:" + self.db_path, "--signing-key-file", self.key_path,
                "--bootstrap-token-file", self.token_path, "--cred-master-key-file",
                self.master_key_path, "--scrypt-log-n", str(self.scrypt_log_n)] + self.extra_args

    @property
    def url(self):
        return self.daemon.base_url

    def start(self):
        self.daemon.args = self.args()
        self.daemon.start()
        return self

    def stop(self):
        return self.daemon.stop()

    def restart(self):
        self.stop()
        return self.start()

    def replace_signing_key(self):
        """Write a new key into --signing-key-file (takes effect at restart)."""
        self.key_pem, self.key = ed25519_pem()
        write_secret(self.key_path, self.key_pem)

    def client(self, token=None):
        return Client(self.daemon, token)

    # --- resources through the API (as the bootstrap admin unless told) ---

    def create_project(self, name=None, description=None, client=None):
        body = {"name": name or unique("p")}
        if description is not None:
            body["description"] = description
        return expect((client or self.admin).post(API + "/projects", json=body), 201)

    def create_user(self, name=None, password=None, display_name=None):
        password = password or "pw-" + secrets.token_hex(8)
        body = {"name": name or unique("u"), "password": password}
        if display_name is not None:
            body["display_name"] = display_name
        obj = expect(self.admin.post(API + "/users", json=body), 201)
        return Principal(obj, password=password)

    def create_service_account(self, project_id, name=None, client=None):
        body = {"name": name or unique("sa"), "project_id": project_id}
        obj = expect((client or self.admin).post(API + "/service-accounts", json=body), 201)
        return Principal(obj, project_id=project_id)

    def bind(self, principal_id, role, project_id=None, client=None):
        body = {"principal_id": principal_id, "role": role}
        if project_id is not None:
            body["project_id"] = project_id
        return expect((client or self.admin).post(API + "/role-bindings", json=body), 201)

    def create_credential(self, principal_id, client=None, description=None):
        body = {"principal_id": principal_id}
        if description is not None:
            body["description"] = description
        return expect((client or self.admin).post(API + "/credentials", json=body), 201)

    def login(self, username, password, project_id=None, ttl=None, request_id=None):
        body = {"grant_type": "password", "username": username, "password": password}
        if project_id is not None:
            body["project_id"] = project_id
        if ttl is not None:
            body["ttl_seconds"] = ttl
        headers = {"X-Request-Id": request_id} if request_id else None
        return self.anon.post(API + "/tokens", json=body, headers=headers)

    def key_login(self, access_key_id, secret, project_id=None):
        body = {"grant_type": "access_key", "access_key_id": access_key_id, "secret": secret}
        if project_id is not None:
            body["project_id"] = project_id
        return self.anon.post(API + "/tokens", json=body)

    def token_for(self, principal, project_id=None):
        r = self.login(principal.name, principal.password, project_id)
        return expect(r, 201)["token"]

    def new_user(self, role="member", project_id=None):
        """A user bound with `role` in `project_id` (a new project if None),
        logged in to that project."""
        if project_id is None:
            project_id = self.create_project()["id"]
        user = self.create_user()
        self.bind(user.id, role, project_id)
        user.project_id, user.role = project_id, role
        user.token = self.token_for(user, project_id)
        user.client = self.client(user.token)
        return user

    def new_service_account(self, project_id, role="member"):
        """A service account bound with `role` in its project, with an
        access key (`.credential`, holding the secret) and a token."""
        sa = self.create_service_account(project_id)
        self.bind(sa.id, role, project_id)
        sa.role = role
        sa.credential = self.create_credential(sa.id)
        r = self.key_login(sa.credential["id"], sa.credential["secret"])
        sa.token = expect(r, 201)["token"]
        sa.client = self.client(sa.token)
        return sa

    def jwks(self):
        return expect(self.anon.get(API + "/keys"), 200)

    def active_kid(self):
        items = expect(self.admin.get(API + "/signing-keys"), 200)["items"]
        active = [k["kid"] for k in items if k["status"] == "active"]
        assert len(active) == 1, "expected one active key: %s" % items
        return active[0]

    def sign(self, claims, key=None, kid=None, alg="EdDSA", headers=None):
        """A token over `claims` signed by `key` (default: the daemon's own
        key file) and naming `kid` (default: the active kid)."""
        hdr = {"kid": kid if kid is not None else self.active_kid()}
        hdr.update(headers or {})
        return jwt.encode(claims, key if key is not None else self.key, algorithm=alg,
                          headers=hdr)
