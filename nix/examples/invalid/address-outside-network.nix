# address-outside-network.nix - an address the network does not hold.
# expect: node 'node02': address 10.0.1.12 is outside network 10.0.0.0/24
import ../../lib/cluster-schema.nix {
  name = "outside";
  network.cidr = "10.0.0.0/24";
  nodes = [
    {
      name = "node01";
      address = "10.0.0.11";
      role = "control-plane";
    }
    {
      name = "node02";
      address = "10.0.1.12";
      role = "worker";
    }
  ];
}
