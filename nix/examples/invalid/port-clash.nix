# port-clash.nix - two services on one port.
# expect: port 7200 is used twice: chainfire's API port, flaredb's raft port
import ../../lib/cluster-schema.nix {
  name = "ports";
  network.cidr = "10.0.0.0/24";
  services.flaredb.raftPort = 7200;
  nodes = [
    {
      name = "node01";
      address = "10.0.0.11";
      role = "control-plane";
    }
  ];
}
