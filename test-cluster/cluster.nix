# cluster.nix - the six-node test harness, written in the operators'
# cluster language (nix/lib/cluster-schema.nix): three control-plane nodes
# and three workers on one bridge, all on this machine (perNodeDirs), paths
# relative to the repository root. test-cluster/cluster.json is its
# evaluation, committed so the harness runs where Nix is not installed;
# scripts/nix-check.sh fails when the two differ. Regenerate with
#   nix-instantiate --eval --strict --json test-cluster/cluster.nix \
#     | python3 -m json.tool --indent 2 > test-cluster/cluster.json
let
  controlPlane = [
    "node01"
    "node02"
    "node03"
  ];
  workers = [
    "node04"
    "node05"
    "node06"
  ];
  node = pool: i: name: {
    inherit name pool;
    address = "10.100.0.${toString (11 + i)}";
  };
in
import ../nix/lib/cluster-schema.nix {
  name = "ultracloud-harness";
  network = {
    cidr = "10.100.0.0/24";
    bridge = "ucbr0";
  };
  stateDir = "work/cluster";
  perNodeDirs = true;
  secretsDir = "work/cluster/secrets";
  classes = {
    control = {
      role = "control-plane";
      disks = [
        {
          name = "data";
          sizeMiB = 1024;
        }
      ];
    };
    worker = {
      role = "worker";
      disks = [
        {
          name = "data";
          sizeMiB = 1024;
        }
      ];
    };
  };
  pools = {
    control.class = "control";
    general.class = "worker";
  };
  nodes =
    builtins.genList (i: node "control" i (builtins.elemAt controlPlane i)) 3
    ++ builtins.genList (i: node "general" (i + 3) (builtins.elemAt workers i)) 3;
}
