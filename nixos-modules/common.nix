# common.nix - what every UltraCloud service module shares: the options each
# daemon has (enable, package, listen, port, dataDir, extraFlags,
# openFirewall), secret-path options with their "not in the Nix store"
# assertions, and the hardened systemd unit every daemon gets.
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
        example = "0.0.0.0";
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
          creates it (StateDirectory=) owned by the service's dynamic user.
        '';
      };

      openFirewall = mkOption {
        type = types.bool;
        default = false;
        description = "Open `port` in the firewall.";
      };

      extraFlags = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [
          "--log-level"
          "debug"
        ];
        description = "Further command-line flags for ${name} (see `${name} --help`).";
      };
    };

  # An option holding the path of a secret file. A string, not a path: a
  # path literal would copy the secret into the world-readable Nix store.
  secretOption =
    description:
    mkOption {
      type = types.str;
      example = "/run/keys/ultracloud/secret";
      description = ''
        ${description} A file outside the Nix store, readable by root;
        systemd hands it to the daemon as a credential.
      '';
    };

  # Assertions that each secret option named in `names` lies outside the store.
  secretAssertions =
    service: cfg: names:
    map (n: {
      assertion = !(lib.hasPrefix builtins.storeDir cfg.${n});
      message = "services.ultracloud.${service}.${n} (${cfg.${n}}) is in the Nix store, which every user can read; keep the secret elsewhere (e.g. /run/keys or /etc/ultracloud) and give its path as a string.";
    }) names;

  dataDirAssertion = service: cfg: {
    assertion = lib.hasPrefix "/var/lib/" cfg.dataDir;
    message = "services.ultracloud.${service}.dataDir (${cfg.dataDir}) must lie under /var/lib/.";
  };

  # StateDirectory= value for dataDir (the part after /var/lib/).
  stateDirectory = cfg: lib.removePrefix "/var/lib/" cfg.dataDir;

  # LoadCredential= entries: each secret option `opt` becomes credential
  # `id`, which the daemon reads as %d/<id>.
  credentials = cfg: ids: lib.mapAttrsToList (opt: id: "${id}:${cfg.${opt}}") ids;

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
  # binary; `extra` adds or overrides serviceConfig entries.
  mkService =
    {
      name,
      description,
      cfg,
      args,
      extra ? { },
    }:
    {
      inherit description;
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      serviceConfig = baseServiceConfig // {
        ExecStart = lib.escapeShellArgs ([ "${cfg.package}/bin/${name}" ] ++ args ++ cfg.extraFlags);
        StateDirectory = stateDirectory cfg;
      } // extra;
    };
}
