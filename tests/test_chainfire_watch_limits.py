"""chainfire's cap on open watches (--max-watches): a watch over the cap is
refused with 429, and a client that goes away gives its slot back promptly,
also when its stream is idle (docs/api/chainfire.md "Watch")."""

import json
import socket
import time
import urllib.parse

import pytest

from cfharness import API, Cluster, b64, put, wait_for
from ucharness import assert_error, expect, parse_metrics

pytestmark = pytest.mark.chainfire

CAP = 3


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cfwatchcap"), size=1,
                extra_args=("--max-watches", str(CAP)))
    try:
        c.start()
        yield c
    finally:
        c.stop()


def open_raw_watch(member, key):
    """A watch on a raw socket (so the test decides when the client goes
    away); returns the socket once the first line arrived."""
    body = json.dumps({"key": b64(key)}).encode()
    u = urllib.parse.urlsplit(member.daemon.base_url)
    s = socket.create_connection((u.hostname, u.port), timeout=10)
    s.sendall(b"POST " + API.encode() + b"/watch HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer " + member.cluster.token.encode() + b"\r\n"
              b"Content-Type: application/json\r\nContent-Length: " +
              str(len(body)).encode() + b"\r\n\r\n" + body)
    got = b""
    while b"watching" not in got:
        chunk = s.recv(4096)
        assert chunk, "stream closed before its first line: %r" % got
        got += chunk
    assert got.startswith(b"HTTP/1.1 200"), got
    return s


def open_watches(member):
    r = member.client().get("/metrics")
    assert r.status_code == 200
    return parse_metrics(r.text)[("chainfire_watches", ())]


def test_watches_over_the_cap_are_refused_and_closed_ones_free_their_slot(cluster):
    m = cluster.leader()
    socks = [open_raw_watch(m, "cap/%d" % i) for i in range(CAP)]
    try:
        assert open_watches(m) == CAP
        r = m.client().post(API + "/watch", json={"key": b64("cap/x")})
        err = assert_error(r, 429, "rate_limited")
        assert "serves %d watches already" % CAP in err["message"]
        assert "--max-watches" in err["message"]
        # An idle stream whose client vanished (no FIN handshake wait, no
        # more reads) is noticed without any change to send it.
        t0 = time.monotonic()
        socks.pop().close()
        wait_for(lambda: open_watches(m) == CAP - 1, timeout=5.0)
        assert time.monotonic() - t0 < 5.0
        socks.append(open_raw_watch(m, "cap/again"))
        assert open_watches(m) == CAP
    finally:
        for s in socks:
            s.close()
    wait_for(lambda: open_watches(m) == 0, timeout=5.0)
    # Writes still flow, and the freed slots take new watches.
    expect(put(m.client(), "cap/1", "v"), 200)
    s = open_raw_watch(m, "cap/1")
    s.close()
