"""errors - the harness's three kinds of failure and their exit codes.

UsageError: the operator asked for something wrong (unknown command, node,
daemon or a bad description): exit 2. Unavailable: the request is fine but
this machine cannot do it (partitions without namespaces): exit 3.
HarnessError: something failed while doing it: exit 1.
"""


class HarnessError(Exception):
    exit_code = 1


class UsageError(HarnessError):
    exit_code = 2


class Unavailable(HarnessError):
    exit_code = 3
