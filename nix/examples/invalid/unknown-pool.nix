# unknown-pool.nix - a node in a pool that is not declared.
# expect: node 'node02': unknown pool "gpu" (known: general)
import ../../lib/cluster-schema.nix {
  name = "pools";
  network.cidr = "10.0.0.0/24";
  classes.worker.role = "worker";
  pools.general.class = "worker";
  nodes = [
    {
      name = "node01";
      address = "10.0.0.11";
      role = "control-plane";
    }
    {
      name = "node02";
      address = "10.0.0.12";
      pool = "gpu";
    }
  ];
}
