"""uccluster - the six-node test-cluster harness (see test-cluster/README.md).

Nodes are Linux network namespaces on an island bridge (root) or loopback
addresses (fallback); daemons are the real binaries from build/bin started
from the cluster description; lanes are bounded fault scenarios that leave
evidence under work/<lane>/<timestamp>/.
"""
