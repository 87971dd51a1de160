# single-node.nix - the smallest cluster: one control-plane node on
# loopback running iam, chainfire and flaredb, each a one-member raft group.
# The NixOS profile single-node-quickstart boots from it.
#   nix-instantiate --eval --strict --json nix/examples/single-node.nix
import ../lib/cluster-schema.nix {
  name = "single-node";
  network.cidr = "127.0.0.0/8";
  nodes = [
    {
      name = "node01";
      address = "127.0.0.1";
      role = "control-plane";
    }
  ];
}
