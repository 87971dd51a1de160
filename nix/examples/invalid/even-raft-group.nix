# even-raft-group.nix - three control-plane nodes, flaredb on two of them.
# expect: flaredb runs on 2 nodes (node01, node02): a raft group needs an odd number
import ../../lib/cluster-schema.nix {
  name = "even-group";
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
    {
      name = "node03";
      address = "10.0.0.13";
      role = "control-plane";
      services = [
        "iam"
        "chainfire"
      ];
    }
  ];
}
