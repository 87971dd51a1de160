"""api - the few calls the harness makes to iam, chainfire and flaredb.

Thin on purpose: every call has a deadline, returns the requests.Response
(or raises requests.RequestException), and speaks the documented API
(docs/api/*.md). Keys and values of chainfire are base64url without padding.
"""

import base64
import json

import requests

API = "/api/v1"
CONNECT_TIMEOUT = 1.0


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Http:
    """One base URL and a bearer token; `session` keeps connections per thread."""

    def __init__(self, base_url, token=None, timeout=8.0, session=None):
        self.base = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.session = session or requests

    def call(self, method, path, json=None, params=None, timeout=None):
        headers = {"Authorization": "Bearer " + self.token} if self.token else {}
        return self.session.request(method, self.base + path, json=json, params=params,
                                    headers=headers,
                                    timeout=(CONNECT_TIMEOUT, timeout or self.timeout))


def error_code(resp):
    try:
        return resp.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def brief(resp):
    """'503 unavailable: message' for logs and evidence."""
    try:
        err = resp.json()["error"]
        return "%d %s: %s" % (resp.status_code, err.get("code"), err.get("message"))
    except (ValueError, KeyError, TypeError):
        return "%d %s" % (resp.status_code, resp.text[:200])


def token_kid(token):
    """The kid named in a compact JWS's header."""
    return json.loads(unb64(token.split(".")[0])).get("kid")


def forge(token):
    """The token with a changed subject and the original signature, which
    must then fail verification."""
    head, payload, sig = token.split(".")
    claims = json.loads(unb64(payload))
    claims["sub"] = "forged-%s" % claims.get("sub")
    return ".".join([head, b64(json.dumps(claims)), sig])


# --- iam ---------------------------------------------------------------------

def iam_bootstrap_admin(http, bootstrap_token, username, password):
    """Create a system-admin user with the bootstrap token (409: exists)."""
    boot = Http(http.base, bootstrap_token, http.timeout)
    r = boot.call("POST", API + "/users", json={"name": username, "password": password})
    if r.status_code == 409:
        return None
    if r.status_code != 201:
        return r
    uid = r.json()["id"]
    return boot.call("POST", API + "/role-bindings",
                     json={"principal_id": uid, "role": "system-admin"})


def iam_login(http, username, password):
    return http.call("POST", API + "/tokens",
                     json={"grant_type": "password", "username": username, "password": password})


# --- chainfire -----------------------------------------------------------------

def cf_put(http, key, value, timeout=None):
    return http.call("PUT", API + "/kv/" + b64(key), json={"value": b64(value)}, timeout=timeout)


def cf_get(http, key, serializable=False, timeout=None):
    params = {"serializable": "true"} if serializable else None
    return http.call("GET", API + "/kv/" + b64(key), params=params, timeout=timeout)


def cf_value(resp):
    """The value (str) of a GET answer; None for 404."""
    if resp.status_code == 404:
        return None
    return unb64(resp.json()["kv"]["value"]).decode()


def cf_cas(http, key, expected, new, timeout=None):
    """Compare-and-swap through one transaction: put `new` when the value
    is `expected` (None: when the key is absent)."""
    if expected is None:
        cmp = {"key": b64(key), "target": "version", "result": "=", "version": 0}
    else:
        cmp = {"key": b64(key), "target": "value", "result": "=", "value": b64(expected)}
    body = {"compare": [cmp], "success": [{"put": {"key": b64(key), "value": b64(new)}}],
            "failure": []}
    return http.call("POST", API + "/txn", json=body, timeout=timeout)


def cf_prefix(http, prefix, serializable=False, timeout=None):
    body = {"key": b64(prefix), "prefix": True, "serializable": serializable}
    return http.call("POST", API + "/kv/range", json=body, timeout=timeout)


def status(http, timeout=None):
    """GET /api/v1/cluster/status (chainfire and flaredb share it)."""
    return http.call("GET", API + "/cluster/status", timeout=timeout)


def members(http):
    return http.call("GET", API + "/cluster/members")


def member_add(http, node_id, raft_address, api_url=None):
    body = {"id": node_id, "address": raft_address}
    if api_url:
        body["api_url"] = api_url
    return http.call("POST", API + "/cluster/members", json=body, timeout=30)


def member_promote(http, node_id):
    return http.call("POST", API + "/cluster/members/%d/promote" % node_id, timeout=30)


def member_remove(http, node_id):
    return http.call("DELETE", API + "/cluster/members/%d" % node_id, timeout=30)


def leader_transfer(http, node_id):
    return http.call("POST", API + "/cluster/leader", json={"id": node_id}, timeout=30)


def backup(http):
    return http.call("GET", API + "/cluster/backup", timeout=60)


# --- flaredb -------------------------------------------------------------------

def sql(http, statements, consistency=None, timeout=None):
    """statements: [(sql, [params...]), ...]."""
    body = {"statements": [{"sql": s, "params": list(p)} for s, p in statements]}
    if consistency:
        body["consistency"] = consistency
    return http.call("POST", API + "/sql", json=body, timeout=timeout)
