# base.nix - what the canonical UltraCloud machines share besides the
# services: a NixOS release, a root file system and a boot loader so the
# configuration is complete, SSH by key only and the firewall on. Every
# value is a default: a machine's own hardware configuration replaces the
# disk and boot placeholders (/dev/disk/by-label/nixos, GRUB on /dev/vda).
{ lib, ... }:
{
  system.stateVersion = lib.mkDefault "24.11";

  fileSystems."/" = lib.mkDefault {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };
  boot.loader.grub.device = lib.mkDefault "/dev/vda";

  networking.firewall.enable = lib.mkDefault true;
  services.openssh = {
    enable = lib.mkDefault true;
    settings.PasswordAuthentication = lib.mkDefault false;
    settings.PermitRootLogin = lib.mkDefault "prohibit-password";
  };
}
