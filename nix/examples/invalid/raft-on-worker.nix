# raft-on-worker.nix - a raft member on a worker.
# expect: node 'node02': chainfire runs on control-plane nodes only (its role is worker)
import ../../lib/cluster-schema.nix {
  name = "raft-worker";
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
      role = "worker";
      services = [ "chainfire" ];
    }
  ];
}
