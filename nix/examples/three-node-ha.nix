# three-node-ha.nix - the highly available control plane: three identical
# machines, each running iam, chainfire and flaredb, so that every raft
# group keeps a majority when one machine is down. The flake's
# nixosConfigurations node01, node02 and node03 boot from it.
#   nix-instantiate --eval --strict --json nix/examples/three-node-ha.nix
import ../lib/cluster-schema.nix {
  name = "ultracloud-ha";
  network.cidr = "10.0.0.0/24";
  classes.control = {
    role = "control-plane";
    disks = [
      {
        name = "data";
        sizeMiB = 102400;
      }
    ];
  };
  pools.control.class = "control";
  nodes = [
    {
      name = "node01";
      address = "10.0.0.11";
      pool = "control";
    }
    {
      name = "node02";
      address = "10.0.0.12";
      pool = "control";
    }
    {
      name = "node03";
      address = "10.0.0.13";
      pool = "control";
    }
  ];
}
