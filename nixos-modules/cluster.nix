# cluster.nix - services.ultracloud.cluster: this machine's place in a
# cluster described with nix/lib/cluster-schema.nix. Give it the schema's
# document (import ./my-cluster.nix, or builtins.fromJSON of its JSON) and
# this node's name; each service module then takes its defaults (enable,
# addresses, ports, raft members, IAM URL, secret paths, settings) from the
# node's entry, so every machine is configured from the same description.
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
  cfg = config.services.ultracloud.cluster;
  nodes = if cfg.document == null then [ ] else cfg.document.nodes;
  matches = builtins.filter (n: n.name == cfg.node) nodes;
in
{
  options.services.ultracloud.cluster = {
    document = mkOption {
      type = types.nullOr types.attrs;
      default = null;
      example = lib.literalExpression "import ./cluster.nix";
      description = ''
        The cluster's bootstrap document: what nix/lib/cluster-schema.nix
        returns for the operator's description (the same on every node).
      '';
    };

    node = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "node01";
      description = "This machine's name among the document's nodes.";
    };

    nodeConfig = mkOption {
      type = types.nullOr types.attrs;
      readOnly = true;
      default = if matches == [ ] then null else lib.head matches;
      defaultText = lib.literalMD "this node's entry of `document`";
      description = ''
        This node's entry of the document (read-only): the service modules
        take their defaults from its `services`.
      '';
    };
  };

  config = lib.mkIf (cfg.document != null) {
    assertions = [
      {
        assertion = matches != [ ];
        message = "services.ultracloud.cluster.node (${toString cfg.node}) must name a node of cluster '${cfg.document.name}': ${lib.concatMapStringsSep ", " (n: n.name) nodes}.";
      }
    ];

    networking.hostName = lib.mkIf (cfg.node != null) (lib.mkDefault cfg.node);
    # Every node knows the others by name.
    networking.hosts = lib.listToAttrs (map (n: lib.nameValuePair n.address [ n.name ]) nodes);
  };
}
