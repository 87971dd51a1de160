# derived-setting.nix - a setting that would make members disagree.
# expect: node 'node01': settings.chainfire.initial_cluster cannot be set: it lists every node that runs the service
import ../../lib/cluster-schema.nix {
  name = "derived";
  network.cidr = "10.0.0.0/24";
  nodes = [
    {
      name = "node01";
      address = "10.0.0.11";
      role = "control-plane";
      settings.chainfire.initial_cluster = "1=10.0.0.99:7201";
    }
  ];
}
