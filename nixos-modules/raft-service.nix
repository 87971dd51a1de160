# raft-service.nix - the NixOS module of a raft-replicated store, shared by
# chainfire and flaredb, whose daemons take the same cluster options
# (node id, raft address, initial cluster, advertised API URL, IAM key set).
# Usage: import ./raft-service.nix { name = "chainfire"; port = 7200;
#   raftPort = 7201; description = "..."; }  gives the module.
{
  name,
  port,
  raftPort,
  description,
}:
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  common = import ./common.nix { inherit lib; };
  opt = "services.ultracloud.${name}";
  cfg = config.services.ultracloud.${name};
  # IAM on this host, when its module is imported and enabled.
  iam = config.services.ultracloud.iam or { };
  iamLocal = iam.enable or false;
  iamHost = if iam.listen == "0.0.0.0" then "127.0.0.1" else iam.listen;
  # The cluster document's options -> this module's options.
  docKeys = {
    node_id = "nodeId";
    listen = "listen";
    port = "port";
    raft_address = "raftAddress";
    raft_bind = "raftBind";
    advertise_url = "advertiseUrl";
    initial_cluster = "initialCluster";
    bootstrap = "bootstrap";
    data_dir = "dataDir";
    iam_jwks_url = "iamJwksUrl";
  };
  node = config.services.ultracloud.cluster.nodeConfig;
  doc = if node == null then null else node.services.${name} or null;
  # "host:port" -> port as a string, or null.
  portIn =
    a:
    let
      m = builtins.match ".*:([0-9]+)" a;
    in
    if m == null then null else lib.head m;
  raftListen = if cfg.raftBind != null then cfg.raftBind else cfg.raftAddress;
  # { "1" = "a:7201"; "2" = "b:7201"; } -> "1=a:7201,2=b:7201"
  idList = v: if builtins.isAttrs v then lib.concatStringsSep "," (lib.mapAttrsToList (id: a: "${id}=${a}") v) else v;
  optionalFlag = flag: v: lib.optionals (v != null) [
    flag
    (common.unitArg v)
  ];
in
{
  # The node's cluster document, if any, supplies defaults.
  imports = [ ./cluster.nix ];

  options.services.ultracloud.${name} =
    common.serviceOptions { inherit name port; }
    // {
      nodeId = mkOption {
        type = types.ints.positive;
        example = 1;
        description = "This member's raft id: unique in the cluster, never reused.";
      };

      raftAddress = mkOption {
        type = types.str;
        default = "127.0.0.1:${toString raftPort}";
        example = "10.0.0.11:${toString raftPort}";
        description = "host:port the other members reach this one's raft at.";
      };

      raftBind = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "0.0.0.0:${toString raftPort}";
        description = "ip:port raft listens on; null: raftAddress.";
      };

      advertiseUrl = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "http://10.0.0.11:${toString port}";
        description = ''
          This member's API URL as the other members reach it: followers
          forward writes and linearizable reads to the leader's. null: the
          daemon's default.
        '';
      };

      initialCluster = mkOption {
        type = types.nullOr (types.either types.str (types.attrsOf types.str));
        default = null;
        example = {
          "1" = "10.0.0.11:${toString raftPort}";
          "2" = "10.0.0.12:${toString raftPort}";
          "3" = "10.0.0.13:${toString raftPort}";
        };
        description = ''
          The first voters, raft id -> raft host:port (or the daemon's
          "1=host:port,2=..." string), the same on every member. Used only
          when dataDir is empty; null: a one-member cluster of this member.
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
        default = if iamLocal then "http://${iamHost}:${toString iam.port}/api/v1/keys" else null;
        defaultText = lib.literalMD "the local IAM's key set when IAM is enabled on this host, else null";
        example = "http://10.0.0.11:7100/api/v1/keys";
        description = "IAM's key set, used to check tokens. Required.";
      };
    };

  config = lib.mkMerge [
    (lib.mkIf (doc != null) { services.ultracloud.${name} = common.clusterDefaults docKeys doc; })

    (lib.mkIf cfg.enable {
      assertions = [
        (common.dataDirAssertion name cfg)
        {
          assertion = cfg.iamJwksUrl != null;
          message = "${opt}.iamJwksUrl must be set (IAM is not enabled on this host).";
        }
        {
          assertion = portIn raftListen != null;
          message = "${opt}.raftAddress and raftBind must be host:port (got ${raftListen}).";
        }
        {
          assertion = portIn raftListen != toString cfg.port;
          message = "${opt}.port and the raft port (${raftListen}) must differ.";
        }
      ];

      networking.firewall.allowedTCPPorts = lib.mkIf cfg.openFirewall (
        [ cfg.port ] ++ lib.optional (portIn raftListen != null) (lib.toInt (portIn raftListen))
      );

      systemd.services."ultracloud-${name}" = common.mkService {
        inherit name description cfg;
        args =
          [
            "--node-id"
            (toString cfg.nodeId)
            "--listen"
            (common.unitArg cfg.listen)
            "--port"
            (toString cfg.port)
            "--raft-address"
            (common.unitArg cfg.raftAddress)
            "--data-dir"
            (common.unitArg cfg.dataDir)
            "--bootstrap=${lib.boolToString cfg.bootstrap}"
            "--iam-jwks-url"
            (common.unitArg (toString cfg.iamJwksUrl))
          ]
          ++ optionalFlag "--raft-bind" cfg.raftBind
          ++ optionalFlag "--advertise-url" cfg.advertiseUrl
          ++ optionalFlag "--initial-cluster" (if cfg.initialCluster == null then null else idList cfg.initialCluster);
        # Tokens are checked against the local IAM when there is one.
        after = lib.optional iamLocal "ultracloud-iam.service";
      };
    })
  ];
}
