# common.nix - what every UltraCloud service module shares: the options each
# daemon has (enable, package, listen, port, dataDir, settings, extraFlags,
# openFirewall), secret-path options with their "not in the Nix store"
# assertions, defaults taken from the node's cluster document, and the
# hardened systemd unit every daemon gets.
# Usage: common = import ./common.nix { inherit lib; };
{ lib }:
let
  inherit (lib) mkOption types;
in
rec {
  # The options of service `name` whose API listens on `port` by default.
  serviceOptions =
    { name, port }:
    {
      enable = lib.mkEnableOption "the UltraCloud ${name} daemon";

      package = mkOption {
        type = types.package;
        description = ''
          The UltraCloud package holding bin/${name}. The flake's
          nixosModules set it to its own build.
        '';
      };

      listen = mkOption {
        type = types.str;
        default = "127.0.0.1";
        example = "10.0.0.11";
        description = "Address the ${name} API binds to.";
      };

      port = mkOption {
        type = types.port;
        default = port;
        description = "TCP port of the ${name} API.";
      };

      dataDir = mkOption {
        type = types.str;
        default = "/var/lib/ultracloud/${name}";
        description = ''
          Where ${name} keeps its state. Must lie under /var/lib: systemd
          creates it (StateDirectory=) owned by the service's dynamic user,
          and it is the only place the service may write.
        '';
      };

      openFirewall = mkOption {
        type = types.bool;
        default = false;
        defaultText = lib.literalMD "`true` for a cluster node that does not listen on loopback";
        description = "Open the service's ports in the firewall.";
      };

      settings = mkOption {
        type = types.attrsOf (
          types.oneOf [
            types.str
            types.int
            types.bool
          ]
        );
        default = { };
        example = {
          log_level = "debug";
          access_log = true;
        };
        description = ''
          Further ${name} options, named as its JSON config file names them
          (`${name} --help`, with - as _); each becomes a flag. A cluster
          document's extra options for this node land here.
        '';
      };

      extraFlags = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [
          "--log-level"
          "debug"
        ];
        description = "Further command-line flags for ${name}, after those of `settings`.";
      };
    };

  # An option holding the path of a secret file. A string, not a path: a
  # path literal would copy the secret into the world-readable Nix store.
  secretOption =
    description:
    mkOption {
      type = types.str;
      example = "/etc/ultracloud/secrets/secret";
      description = ''
        ${description} An absolute path outside the Nix store, readable by
        root; systemd hands the file to the daemon as a credential.
      '';
    };

  # Assertions that each secret option named in `names` is an absolute path
  # outside the store.
  secretAssertions =
    service: cfg: names:
    lib.concatMap (n: [
      {
        assertion = !(lib.hasPrefix builtins.storeDir cfg.${n});
        message = "services.ultracloud.${service}.${n} (${cfg.${n}}) is in the Nix store, which every user can read; keep the secret elsewhere (e.g. /etc/ultracloud/secrets) and give its path as a string.";
      }
      {
        assertion = lib.hasPrefix "/" cfg.${n};
        message = "services.ultracloud.${service}.${n} (${cfg.${n}}) must be an absolute path.";
      }
    ]) names;

  dataDirAssertion = service: cfg: {
    assertion = lib.hasPrefix "/var/lib/" cfg.dataDir;
    message = "services.ultracloud.${service}.dataDir (${cfg.dataDir}) must lie under /var/lib/.";
  };

  # StateDirectory= value for dataDir (the part after /var/lib/).
  stateDirectory = cfg: lib.removePrefix "/var/lib/" cfg.dataDir;

  # LoadCredential= entries: each secret option `opt` becomes credential
  # `id`, which the daemon reads as %d/<id>.
  credentials = cfg: ids: lib.mapAttrsToList (opt: id: "${id}:${cfg.${opt}}") ids;

  # Defaults for a service from this node's entry of the cluster document
  # (`doc`: the daemon's config object there, or null off a cluster).
  # `keys` maps the document's option names to this module's options; other
  # keys become `settings`. mkDefault throughout, so the machine's own
  # configuration still wins. The attribute names never depend on `doc`:
  # the module system reads them before it evaluates the mkIf around this.
  clusterDefaults =
    keys: doc:
    let
      d = if doc == null then { } else doc;
    in
    lib.mapAttrs' (k: o: lib.nameValuePair o (lib.mkIf (d ? ${k}) (lib.mkDefault d.${k}))) keys
    // {
      enable = lib.mkDefault true;
      openFirewall = lib.mkDefault (!(lib.hasPrefix "127." (d.listen or "127.0.0.1")));
      # Per option, so a machine that adds one setting keeps the others.
      settings = lib.mapAttrs (_: lib.mkDefault) (removeAttrs d (builtins.attrNames keys));
    };

  # A value as systemd's ExecStart= reads it literally: % starts a
  # specifier and $ a variable, so both are doubled.
  unitArg = v: lib.replaceStrings [ "%" "$" ] [ "%%" "$$" ] v;

  # settings -> [ "--log-level=debug" ... ] (booleans as true/false).
  settingsFlags = lib.mapAttrsToList (
    k: v:
    "--${lib.replaceStrings [ "_" ] [ "-" ] k}=${
      unitArg (if builtins.isBool v then lib.boolToString v else toString v)
    }"
  );

  # serviceConfig for every daemon: restart on failure, and a dynamic user
  # with no capabilities on a read-only system with nothing it does not need.
  baseServiceConfig = {
    Type = "exec";
    Restart = "on-failure";
    RestartSec = "2s";
    TimeoutStopSec = "30s";
    DynamicUser = true;
    StateDirectoryMode = "0700";
    UMask = "0077";
    NoNewPrivileges = true;
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    ProtectSystem = "strict";
    ProtectHome = true;
    PrivateTmp = true;
    PrivateDevices = true;
    PrivateMounts = true;
    ProtectProc = "invisible";
    ProtectKernelTunables = true;
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectControlGroups = true;
    ProtectClock = true;
    ProtectHostname = true;
    RestrictAddressFamilies = [
      "AF_INET"
      "AF_INET6"
      "AF_UNIX"
    ];
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    LockPersonality = true;
    MemoryDenyWriteExecute = true;
    SystemCallArchitectures = "native";
    SystemCallFilter = [
      "@system-service"
      "~@privileged"
    ];
  };

  # The systemd unit of a daemon: `args` is its command line after the
  # binary (systemd specifiers such as %d allowed); settings and extraFlags
  # follow, so they win over args. `extra` adds serviceConfig entries; units
  # in `after` are ordered before this one and wanted by it.
  mkService =
    {
      name,
      description,
      cfg,
      args,
      after ? [ ],
      extra ? { },
    }:
    {
      inherit description;
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ] ++ after;
      after = [ "network-online.target" ] ++ after;
      serviceConfig = baseServiceConfig // {
        ExecStart = lib.escapeShellArgs (
          [ "${cfg.package}/bin/${name}" ] ++ args ++ settingsFlags cfg.settings ++ cfg.extraFlags
        );
        StateDirectory = stateDirectory cfg;
      } // extra;
    };
}
