# chainfire.nix - NixOS module for the chainfire coordination store
# (services.ultracloud.chainfire): one member of a raft-replicated key/value
# store with leases and watches that checks every request's token against
# IAM's published key set. The options are raft-service.nix's.
import ./raft-service.nix {
  name = "chainfire";
  port = 7200;
  raftPort = 7201;
  description = "UltraCloud chainfire (replicated coordination store)";
}
