# default.nix - every UltraCloud NixOS module; import this one to get all
# services.ultracloud.* options (each service stays off until enabled, or
# until services.ultracloud.cluster places it on this node).
{
  imports = [
    ./cluster.nix
    ./iam.nix
    ./chainfire.nix
    ./flaredb.nix
  ];
}
