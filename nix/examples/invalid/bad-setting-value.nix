# bad-setting-value.nix - a daemon option of a type no config file holds.
# expect: services.chainfire.settings.log_level must be a string, an integer or a boolean
import ../../lib/cluster-schema.nix {
  name = "bad-value";
  network.cidr = "10.0.0.0/24";
  services.chainfire.settings.log_level = [ "debug" ];
  nodes = [
    {
      name = "node01";
      address = "10.0.0.11";
      role = "control-plane";
    }
  ];
}
