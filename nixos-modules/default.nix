# default.nix - every UltraCloud NixOS module; import this one to get all
# services.ultracloud.* options (each service stays off until enabled).
{
  imports = [
    ./iam.nix
    ./chainfire.nix
  ];
}
