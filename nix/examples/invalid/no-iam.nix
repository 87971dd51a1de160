# no-iam.nix - a store with no IAM to check tokens against.
# expect: no node runs iam, which the other services check tokens against (here: chainfire)
import ../../lib/cluster-schema.nix {
  name = "no-iam";
  network.cidr = "10.0.0.0/24";
  nodes = [
    {
      name = "node01";
      address = "10.0.0.11";
      role = "control-plane";
      services = [ "chainfire" ];
    }
  ];
}
