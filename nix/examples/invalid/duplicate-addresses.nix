# duplicate-addresses.nix - two nodes with one address.
# expect: nodes node01, node02 have the same address 10.0.0.11
import ../../lib/cluster-schema.nix {
  name = "dup-addresses";
  network.cidr = "10.0.0.0/24";
  nodes = [
    {
      name = "node01";
      address = "10.0.0.11";
      role = "control-plane";
    }
    {
      name = "node02";
      address = "10.0.0.11";
      role = "worker";
    }
  ];
}
