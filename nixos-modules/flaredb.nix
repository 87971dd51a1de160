# flaredb.nix - NixOS module for the flaredb metadata store
# (services.ultracloud.flaredb): one member of a raft-replicated SQL and
# key/value store, the clustered backend of the services' storage. Its
# cluster options are chainfire's (raft-service.nix).
import ./raft-service.nix {
  name = "flaredb";
  port = 7300;
  raftPort = 7301;
  description = "UltraCloud flaredb (replicated metadata store)";
}
