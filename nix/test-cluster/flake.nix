# nix/test-cluster/flake.nix - the entry point of the six-node test harness:
#   nix run ./nix/test-cluster#cluster -- <lane>     (e.g. fresh-smoke)
# run from the repository root. It hands over to test-cluster/run.sh, which
# the harness issue adds (nodes as network namespaces on a bridge, or on
# loopback aliases without root, with kill/restart/partition faults). Until
# that script exists this entry says so and exits 2; it runs nothing and
# never reports a lane as passed.
{
  description = "UltraCloud six-node test harness entry (the harness itself is not built yet)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs =
    { nixpkgs, ... }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      apps = forSystems (
        pkgs:
        let
          cluster = pkgs.writeShellApplication {
            name = "ultracloud-test-cluster";
            runtimeInputs = [ pkgs.git pkgs.coreutils ];
            text = ''
              root=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
              if [ -x "$root/test-cluster/run.sh" ]; then
                  exec "$root/test-cluster/run.sh" "$@"
              fi
              echo "test-cluster: the six-node harness is not implemented yet." >&2
              echo "test-cluster: it arrives with the test-cluster harness issue as" >&2
              echo "test-cluster: test-cluster/run.sh; nothing was run (lane: ''${1:-none})." >&2
              exit 2
            '';
          };
        in
        {
          cluster = {
            type = "app";
            program = lib.getExe cluster;
          };
          default = {
            type = "app";
            program = lib.getExe cluster;
          };
        }
      );
    };
}
