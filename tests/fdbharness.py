"""fdbharness - a flaredb cluster for integration tests (docs/api/flaredb.md).

flaredb members take chainfire's cluster options and publish their API URL
through the log the same way, so this reuses cfharness's Cluster and Member
(elections, leader discovery, stop checks) with the flaredb binary, and adds
helpers that speak the SQL and KV API: keys are base64url (unpadded) in
paths and bodies, blobs are {"blob": "<base64url>"} in SQL values.
"""

import hashlib
import os
import time

from cfharness import API, Cluster, Member, b64, unb64, wait_for  # noqa: F401 - re-exported
from ucharness import assert_error, expect, timeout_scale


class FdbMember(Member):
    """One flaredb member; the database is <data dir>/flaredb.db."""

    BINARY = "flaredb"

    @property
    def db_path(self):
        return os.path.join(self.data_dir, "flaredb.db")


class FdbCluster(Cluster):
    """N flaredb members and one IAM (or a shared one), as cfharness.Cluster."""

    MEMBER = FdbMember
    DIR_PREFIX = "fdb"

    def leader(self, timeout=10.0, exclude=()):
        """The agreed leader (cfharness), once every running member also
        knows its current API URL. A member gets a new port at every start
        and publishes it when it next leads, so until that entry reaches the
        others they would forward to the port it had before."""
        lead = super().leader(timeout, exclude)

        def current():
            for m in self.running():
                seen = (m.status().get("leader") or {}).get("api_url")
                assert seen == lead.daemon.base_url, "member %d: %s" % (m.id, seen)
            return True
        wait_for(current, timeout=timeout)
        return lead


def fdb_error(resp, status, code=None):
    """assert_error for answers that may have been relayed from the leader.
    A forwarded answer (X-Flaredb-Leader set) carries the leader's request
    id in its body while the header holds the follower's, because
    uc_replsvc_forward does not pass X-Request-Id along (a gap in
    lib/replsvc_forward.c); every other part of the envelope is checked."""
    if resp.headers.get("X-Flaredb-Leader") is not None and resp.status_code == status:
        resp.headers["X-Request-Id"] = resp.json().get("error", {}).get("request_id", "")
    return assert_error(resp, status, code)


def statements(stmts):
    """[sql or (sql, params), ...] -> the API's statement objects."""
    out = []
    for s in stmts:
        if isinstance(s, str):
            out.append({"sql": s})
        else:
            out.append({"sql": s[0], "params": list(s[1])})
    return out


def sql(client, *stmts, **fields):
    """POST /api/v1/sql with the statements and any other body fields
    (transaction, consistency, confirm_destructive). Returns the response."""
    body = {"statements": statements(stmts)}
    body.update(fields)
    return client.post(API + "/sql", json=body)


def rows(resp, i=0):
    """The rows of statement i of a 200 answer."""
    return expect(resp, 200)["results"][i]["rows"]


def scalar(client, query, *params, **fields):
    return rows(sql(client, (query, params), **fields))[0][0]


def blob(data):
    """A blob parameter or value."""
    return {"blob": b64(data)}


def table_digest(client, table, key="id", **fields):
    """(row count, sha256 of every row in key order) of `table` as `client`
    reads it: what two members must agree on."""
    r = rows(sql(client, "SELECT * FROM %s ORDER BY %s" % (table, key), **fields))
    h = hashlib.sha256()
    for row in r:
        h.update(repr(row).encode())
    return len(r), h.hexdigest()


def kv_put(client, ns, key, value, **fields):
    body = {"value": b64(value)}
    body.update(fields)
    return client.put(API + "/kv/%s/%s" % (ns, b64(key)), json=body)


def kv_get(client, ns, key, consistency=None):
    q = "?consistency=" + consistency if consistency else ""
    return client.get(API + "/kv/%s/%s%s" % (ns, b64(key), q))


def kv_value(resp):
    """The value (bytes) of a 200 GET answer."""
    return unb64(expect(resp, 200)["value"])


def settle(cluster, table, timeout=15.0, key="id"):
    """Wait until every running member serves the same (count, digest) of
    `table` from its own copy, and return it."""
    deadline = time.monotonic() + timeout * timeout_scale()
    while True:
        seen = set()
        for m in cluster.running():
            try:
                seen.add(table_digest(m.client(), table, key, consistency="serializable"))
            except AssertionError:
                seen.add(None)
        if len(seen) == 1 and None not in seen:
            return seen.pop()
        if time.monotonic() > deadline:
            raise AssertionError("members disagree on %s: %s" % (table, seen))
        time.sleep(0.1)
