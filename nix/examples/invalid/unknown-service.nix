# unknown-service.nix - a misspelt service.
# expect: node 'node01': unknown service 'chainfir' (known: chainfire, flaredb, iam)
import ../../lib/cluster-schema.nix {
  name = "typo";
  network.cidr = "10.0.0.0/24";
  nodes = [
    {
      name = "node01";
      address = "10.0.0.11";
      role = "control-plane";
      services = [
        "iam"
        "chainfir"
      ];
    }
  ];
}
