"""secrets - the cluster's shared secrets, made on first start.

Every control-plane IAM gets the same signing key, so a token issued by one
node's IAM carries a kid (derived from the public key) that every other
node's IAM publishes too: chainfire on node02 verifies node01's tokens.
Files are 0600 in a 0700 directory and are never overwritten.
"""

import os
import secrets as pysecrets

from . import sh


def ed25519_pem():
    """A new Ed25519 private key, PKCS#8 PEM (python cryptography, else openssl)."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        return sh.run(["openssl", "genpkey", "-algorithm", "ed25519"]).stdout.encode()
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


# option name -> maker of its file's content (iam's formats, docs/operations.md)
MAKERS = {
    "signing_key_file": ed25519_pem,
    "bootstrap_token_file": lambda: pysecrets.token_hex(32).encode(),  # 64 chars (32+)
    "cred_master_key_file": lambda: pysecrets.token_hex(32).encode(),  # 64 hex digits
}


def write_private(path, data):
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def ensure(desc, repo):
    """Create every secret file the description names and that is missing.
    Returns the list of files created."""
    made = []
    for node in desc.nodes:
        for cfg in node.services.values():
            for opt, maker in MAKERS.items():
                rel = cfg.get(opt)
                if not isinstance(rel, str):
                    continue
                path = os.path.join(repo, rel)
                if not os.path.exists(path):
                    write_private(path, maker())
                    made.append(rel)
    return made


def read_text(repo, rel):
    with open(os.path.join(repo, rel), "r") as f:
        return f.read().strip()
