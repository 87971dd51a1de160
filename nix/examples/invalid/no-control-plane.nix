# no-control-plane.nix - workers only.
# expect: no control-plane node: give at least one node (1, 3 or 5) the role "control-plane"
import ../../lib/cluster-schema.nix {
  name = "headless";
  network.cidr = "10.0.0.0/24";
  nodes = [
    {
      name = "node01";
      address = "10.0.0.11";
      role = "worker";
    }
  ];
}
