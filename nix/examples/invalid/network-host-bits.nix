# network-host-bits.nix - a network written as an address.
# expect: network.cidr 10.0.0.1/24 has host bits set after the /24
import ../../lib/cluster-schema.nix {
  name = "host-bits";
  network.cidr = "10.0.0.1/24";
  nodes = [
    {
      name = "node01";
      address = "10.0.0.11";
      role = "control-plane";
    }
  ];
}
