# unknown-role.nix - a role the schema does not know.
# expect: class 'control': unknown role "master" (known: control-plane, worker)
import ../../lib/cluster-schema.nix {
  name = "roles";
  network.cidr = "10.0.0.0/24";
  classes.control.role = "master";
  nodes = [
    {
      name = "node01";
      address = "10.0.0.11";
      class = "control";
    }
  ];
}
