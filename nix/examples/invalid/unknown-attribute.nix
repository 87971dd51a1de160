# unknown-attribute.nix - a misspelt attribute.
# expect: node 'node01': unknown attribute 'adress'
import ../../lib/cluster-schema.nix {
  name = "attrs";
  network.cidr = "10.0.0.0/24";
  nodes = [
    {
      name = "node01";
      adress = "10.0.0.11";
      role = "control-plane";
    }
  ];
}
