"""sh - run a host command with a deadline and a readable failure.

Every external command the harness runs (ip, nft, mount, losetup, ...) goes
through run(): it never hangs (timeout), and a failure names the command and
shows the tail of what it printed.
"""

import subprocess

from .errors import HarnessError


def run(argv, check=True, timeout=30, input_text=None):
    """Run `argv`; returns CompletedProcess (text). With check, a non-zero
    exit or a timeout raises HarnessError."""
    try:
        cp = subprocess.run(argv, input=input_text, capture_output=True, text=True,
                            timeout=timeout, stdin=None if input_text is not None else
                            subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise HarnessError("%s: no answer within %ds" % (" ".join(argv), timeout))
    except FileNotFoundError:
        raise HarnessError("%s: command not found (scripts/deps.sh installs it)" % argv[0])
    if check and cp.returncode != 0:
        out = (cp.stderr or cp.stdout or "").strip().splitlines()[-5:]
        raise HarnessError("%s: exit %d: %s" % (" ".join(argv), cp.returncode, " / ".join(out)))
    return cp


def ok(argv, timeout=30):
    """True when `argv` exits 0."""
    try:
        return run(argv, check=False, timeout=timeout).returncode == 0
    except HarnessError:
        return False
