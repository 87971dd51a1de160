# iam.nix - NixOS module for the IAM daemon (services.ultracloud.iam):
# identities, projects, roles and the tokens every other service trusts.
# Secrets are paths outside the store, passed in as systemd credentials.
# On a cluster node (services.ultracloud.cluster) its defaults come from the
# node's entry of the cluster document.
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
  # The cluster document's iam options -> this module's options.
  docKeys = {
    listen = "listen";
    port = "port";
    store = "store";
    signing_key_file = "signingKeyFile";
    bootstrap_token_file = "bootstrapTokenFile";
    cred_master_key_file = "credMasterKeyFile";
  };
  node = config.services.ultracloud.cluster.nodeConfig;
  doc = if node == null then null else node.services.iam or null;
  sqlitePath = lib.removePrefix "sqlite:" cfg.store;
in
{
  # The node's cluster document, if any, supplies defaults.
  imports = [ ./cluster.nix ];

  options.services.ultracloud.iam =
    common.serviceOptions {
      name = "iam";
      port = 7100;
    }
    // {
      store = lib.mkOption {
        type = lib.types.str;
        default = "sqlite:${cfg.dataDir}/iam.db";
        defaultText = lib.literalExpression ''"sqlite:''${config.services.ultracloud.iam.dataDir}/iam.db"'';
        description = "Storage URL; a sqlite: file must lie under dataDir.";
      };
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

  config = lib.mkMerge [
    (lib.mkIf (doc != null) {
      services.ultracloud.iam = common.clusterDefaults docKeys doc // {
        # The store's directory is the state directory.
        dataDir = lib.mkIf (lib.hasPrefix "sqlite:" (doc.store or "")) (
          lib.mkDefault (dirOf (lib.removePrefix "sqlite:" doc.store))
        );
      };
    })

    (lib.mkIf cfg.enable {
      assertions = common.secretAssertions "iam" cfg (builtins.attrNames secrets) ++ [
        (common.dataDirAssertion "iam" cfg)
        {
          assertion = !(lib.hasPrefix "sqlite:" cfg.store) || lib.hasPrefix "${cfg.dataDir}/" sqlitePath;
          message = "services.ultracloud.iam.store (${cfg.store}) must lie under dataDir (${cfg.dataDir}), the only place the service may write.";
        }
      ];

      networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall [ cfg.port ];

      systemd.services.ultracloud-iam = common.mkService {
        name = "iam";
        description = "UltraCloud IAM (identities, projects, roles, tokens)";
        inherit cfg;
        args = [
          "--listen"
          (common.unitArg cfg.listen)
          "--port"
          (toString cfg.port)
          "--store"
          (common.unitArg cfg.store)
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
    })
  ];
}
