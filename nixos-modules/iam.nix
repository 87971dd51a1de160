# iam.nix - NixOS module for the IAM daemon (services.ultracloud.iam):
# identities, projects, roles and the tokens every other service trusts.
# Secrets are paths outside the store, passed in as systemd credentials.
{ config, lib, ... }:
let
  common = import ./common.nix { inherit lib; };
  cfg = config.services.ultracloud.iam;
  # secret option -> credential id (the daemon reads %d/<id>)
  secrets = {
    signingKeyFile = "signing-key";
    bootstrapTokenFile = "bootstrap-token";
    credMasterKeyFile = "cred-master-key";
  };
in
{
  options.services.ultracloud.iam =
    common.serviceOptions {
      name = "iam";
      port = 7100;
    }
    // {
      signingKeyFile = common.secretOption ''
        Ed25519 private key that signs tokens, PKCS#8 PEM
        (`openssl genpkey -algorithm ed25519`). A different key in this file
        becomes the new active key at the next start.
      '';
      bootstrapTokenFile = common.secretOption ''
        Bootstrap system-admin token (at least 32 characters). Use it to
        create the first admin user, then keep it offline.
      '';
      credMasterKeyFile = common.secretOption ''
        The 32-byte key sealing credential secrets and stored signing keys:
        32 raw bytes or 64 hex digits (`openssl rand -hex 32`).
      '';
      tokenTtl = lib.mkOption {
        type = lib.types.ints.between 60 86400;
        default = 3600;
        description = "Default and longest token lifetime, in seconds.";
      };
    };

  config = lib.mkIf cfg.enable {
    assertions = common.secretAssertions "iam" cfg (builtins.attrNames secrets) ++ [
      (common.dataDirAssertion "iam" cfg)
    ];

    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall [ cfg.port ];

    systemd.services.ultracloud-iam = common.mkService {
      name = "iam";
      description = "UltraCloud IAM (identities, projects, roles, tokens)";
      inherit cfg;
      args = [
        "--listen"
        cfg.listen
        "--port"
        (toString cfg.port)
        "--store"
        "sqlite:${cfg.dataDir}/iam.db"
        "--token-ttl"
        (toString cfg.tokenTtl)
        "--signing-key-file"
        "%d/${secrets.signingKeyFile}"
        "--bootstrap-token-file"
        "%d/${secrets.bootstrapTokenFile}"
        "--cred-master-key-file"
        "%d/${secrets.credMasterKeyFile}"
      ];
      extra.LoadCredential = common.credentials cfg secrets;
    };
  };
}
