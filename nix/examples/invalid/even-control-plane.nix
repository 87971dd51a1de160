# even-control-plane.nix - a control plane that loses its majority with either node.
# expect: 2 control-plane nodes (node01, node02): the control plane needs an odd number
import ../../lib/cluster-schema.nix {
  name = "even";
  network.cidr = "10.0.0.0/24";
  nodes = [
    {
      name = "node01";
      address = "10.0.0.11";
      role = "control-plane";
    }
    {
      name = "node02";
      address = "10.0.0.12";
      role = "control-plane";
    }
  ];
}
