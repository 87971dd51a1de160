# single-node-quickstart.nix - one machine running the whole control plane
# (iam, chainfire, flaredb) on loopback, from nix/examples/single-node.nix.
# Unlike a cluster node it makes its own IAM secrets on first boot (root
# only, under /etc/ultracloud/secrets, never in the Nix store): read the
# bootstrap token with `sudo cat /etc/ultracloud/secrets/iam-bootstrap-token`.
{ lib, pkgs, ... }:
let
  document = import ../../nix/examples/single-node.nix;
  iam = (lib.head document.nodes).services.iam;
  q = lib.escapeShellArg;
in
{
  imports = [
    (import ./cluster-node.nix {
      inherit document;
      node = "node01";
    })
  ];

  # Runs before IAM; existing secrets are kept.
  systemd.services.ultracloud-secrets = {
    description = "UltraCloud quickstart: create the IAM secrets once";
    requiredBy = [ "ultracloud-iam.service" ];
    before = [ "ultracloud-iam.service" ];
    path = [
      pkgs.openssl
      pkgs.coreutils
    ];
    serviceConfig = {
      Type = "oneshot";
      RemainAfterExit = true;
      UMask = "0077";
    };
    script = ''
      set -eu
      # make FILE COMMAND...: FILE from COMMAND's output unless it exists.
      make() {
        f=$1
        shift
        [ -s "$f" ] && return 0
        mkdir -p "$(dirname "$f")"
        "$@" >"$f.tmp"
        mv "$f.tmp" "$f"
      }
      make ${q iam.signing_key_file} openssl genpkey -algorithm ed25519
      make ${q iam.bootstrap_token_file} openssl rand -hex 32
      make ${q iam.cred_master_key_file} openssl rand -hex 32
    '';
  };
}
