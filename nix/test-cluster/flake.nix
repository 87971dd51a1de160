# nix/test-cluster/flake.nix - the entry point of the six-node test harness:
#   nix run ./nix/test-cluster#cluster -- fresh-smoke
# run from the repository root. It is the root flake's `cluster` app (the
# harness, test-cluster/run.sh, with the daemons of the flake's build),
# reached through a relative input, which needs Nix 2.26 or later; with an
# older Nix run `nix run .#cluster -- fresh-smoke` instead (docs/nix.md).
{
  description = "UltraCloud six-node test harness (nodes as network namespaces on a bridge)";

  inputs.ultracloud.url = "path:../..";

  outputs =
    { ultracloud, ... }:
    {
      apps = builtins.mapAttrs (_: apps: {
        inherit (apps) cluster;
        default = apps.cluster;
      }) ultracloud.apps;
    };
}
