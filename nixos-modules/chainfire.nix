# chainfire.nix - NixOS module for the chainfire coordination store
# (services.ultracloud.chainfire): one member of a Raft-replicated key/value
# store that checks every request's token against IAM's published key set.
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  common = import ./common.nix { inherit lib; };
  cfg = config.services.ultracloud.chainfire;
  # IAM on this host, when its module is imported and enabled.
  iamLocal = config.services.ultracloud.iam.enable or false;
  iamPort = config.services.ultracloud.iam.port or 7100;
  # { "1" = "a:7201"; "2" = "b:7201"; } -> "1=a:7201,2=b:7201"
  idList = m: lib.concatStringsSep "," (lib.mapAttrsToList (id: v: "${id}=${v}") m);
in
{
  options.services.ultracloud.chainfire =
    common.serviceOptions {
      name = "chainfire";
      port = 7200;
    }
    // {
      nodeId = mkOption {
        type = types.ints.positive;
        example = 1;
        description = "This member's raft id: unique in the cluster, never reused.";
      };

      raftPort = mkOption {
        type = types.port;
        default = 7201;
        description = "TCP port of the raft transport (bound on `listen`).";
      };

      advertiseAddress = mkOption {
        type = types.str;
        default = "127.0.0.1";
        example = "10.0.0.1";
        description = ''
          Host the other members reach this one's raft at; the daemon gets
          `--raft-address advertiseAddress:raftPort` and binds raft to
          `listen:raftPort`. Set it for any cluster of more than one host.
        '';
      };

      initialCluster = mkOption {
        type = types.attrsOf types.str;
        default = { };
        example = {
          "1" = "10.0.0.1:7201";
          "2" = "10.0.0.2:7201";
          "3" = "10.0.0.3:7201";
        };
        description = ''
          The first voters, raft id -> raft host:port; the same on every
          member. Used only when dataDir is empty. Empty: a one-member
          cluster of this member.
        '';
      };

      peerUrls = mkOption {
        type = types.attrsOf types.str;
        default = { };
        example = {
          "1" = "http://10.0.0.1:7200";
          "2" = "http://10.0.0.2:7200";
          "3" = "http://10.0.0.3:7200";
        };
        description = ''
          API URLs of the members, raft id -> URL. With them a follower
          forwards writes and linearizable reads to the leader; without them
          it answers 503 naming the leader.
        '';
      };

      bootstrap = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Bootstrap from initialCluster on an empty dataDir. false: start
          empty and wait to be added with POST /api/v1/cluster/members.
        '';
      };

      iamJwksUrl = mkOption {
        type = types.nullOr types.str;
        default = if iamLocal then "http://127.0.0.1:${toString iamPort}/api/v1/keys" else null;
        defaultText = lib.literalExpression ''
          "http://127.0.0.1:''${toString config.services.ultracloud.iam.port}/api/v1/keys"
          when IAM is enabled on this host, else null'';
        example = "http://10.0.0.1:7100/api/v1/keys";
        description = "IAM's key set, used to check tokens. Required.";
      };
    };

  config = lib.mkIf cfg.enable {
    assertions = [
      (common.dataDirAssertion "chainfire" cfg)
      {
        assertion = cfg.iamJwksUrl != null;
        message = "services.ultracloud.chainfire.iamJwksUrl must be set (IAM is not enabled on this host).";
      }
      {
        assertion = cfg.port != cfg.raftPort;
        message = "services.ultracloud.chainfire.port and raftPort must differ.";
      }
    ];

    networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall [
      cfg.port
      cfg.raftPort
    ];

    systemd.services.ultracloud-chainfire =
      common.mkService {
        name = "chainfire";
        description = "UltraCloud chainfire (replicated coordination store)";
        inherit cfg;
        args =
          [
            "--node-id"
            (toString cfg.nodeId)
            "--listen"
            cfg.listen
            "--port"
            (toString cfg.port)
            "--raft-address"
            "${cfg.advertiseAddress}:${toString cfg.raftPort}"
            "--raft-bind"
            "${cfg.listen}:${toString cfg.raftPort}"
            "--data-dir"
            cfg.dataDir
            "--bootstrap=${lib.boolToString cfg.bootstrap}"
            "--iam-jwks-url"
            (toString cfg.iamJwksUrl)
          ]
          ++ lib.optionals (cfg.initialCluster != { }) [
            "--initial-cluster"
            (idList cfg.initialCluster)
          ]
          ++ lib.optionals (cfg.peerUrls != { }) [
            "--peer-urls"
            (idList cfg.peerUrls)
          ];
      }
      # Tokens are checked against the local IAM when there is one.
      // lib.optionalAttrs iamLocal {
        wants = [
          "network-online.target"
          "ultracloud-iam.service"
        ];
        after = [
          "network-online.target"
          "ultracloud-iam.service"
        ];
      };
  };
}
