# duplicate-node-names.nix - two nodes with one name.
# expect: node name 'node01' appears more than once
import ../../lib/cluster-schema.nix {
  name = "dup-names";
  network.cidr = "10.0.0.0/24";
  nodes = [
    {
      name = "node01";
      address = "10.0.0.11";
      role = "control-plane";
    }
    {
      name = "node01";
      address = "10.0.0.12";
      role = "worker";
    }
  ];
}
