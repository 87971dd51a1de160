# cluster-node.nix - the profile of a machine in an UltraCloud cluster:
# every service module plus base.nix, placed by the cluster document.
# Usage: import ./cluster-node.nix { document = import ./my-cluster.nix;
#   node = "node01"; }  gives the module (the flake's node01..node03 use
# nix/examples/three-node-ha.nix). The IAM secrets named in the document
# (secretsDir) must be on the machine, identical on every node, before IAM
# starts; docs/nix.md says how to create them.
{ document, node }:
{
  imports = [
    ../default.nix
    ./base.nix
  ];
  services.ultracloud.cluster = { inherit document node; };
}
