# cluster-schema.nix - the one place an operator describes an UltraCloud
# cluster, and what every node boots from. A function from the description
# to the bootstrap document: per node, each daemon's config exactly as its
# `--config FILE` reads it (option names with '-' as '_'). A bad description
# stops evaluation with one line per problem, naming the node and the field.
# Builtins only (no nixpkgs), so `nix-instantiate --eval --strict --json`
# runs it on any machine with Nix; the NixOS modules read the same document.
#
# The description (? marks an optional attribute, with its default):
#   name          cluster name: lower-case letters, digits and '-'
#   network       { cidr = "10.0.0.0/24"; bridge ? null; }  every node's address lies in cidr
#   stateDir      ? "/var/lib/ultracloud"      service state goes to stateDir/<service>
#   perNodeDirs   ? false   true when all nodes share one file system (the test harness):
#                           state goes to stateDir/<node>/<service> instead
#   secretsDir    ? "/etc/ultracloud/secrets"  IAM's secret files (paths only: never the secrets)
#   classes       ? { }   name -> { role; disks ? [ ]; services ? the role's }   kinds of machine
#   pools         ? { }   name -> { class; }   groups of nodes of one class, for placement
#   services      ? { }   name -> { port ? default; raftPort ? default; settings ? { }; }
#                         cluster-wide: ports, and further daemon options for every node
#   nodes         [ { name; address; pool ? null; class ? the pool's; role ? the class's;
#                     disks ? the class's; services ? the class's, else the role's;
#                     settings ? { }; raftId ? position in nodes, from 1; } ]
# A disk is { name; sizeMiB; }. settings maps a service to daemon options
# (e.g. { chainfire = { log_level = "debug"; }; }); a node's win over the
# cluster's. Raft ids follow the order of `nodes`: append new nodes at the
# end, and pin raftId when removing one, so that no member's id changes.
description:
let
  inherit (builtins)
    all
    any
    attrNames
    concatMap
    concatStringsSep
    elem
    elemAt
    filter
    foldl'
    genList
    hasAttr
    head
    isAttrs
    isBool
    isInt
    isList
    isString
    length
    listToAttrs
    match
    sort
    ;

  # --- what the schema knows ------------------------------------------------

  # The daemons that exist, with their default ports (DESIGN.md).
  catalogue = {
    iam = {
      port = 7100;
      raft = false;
    };
    chainfire = {
      port = 7200;
      raftPort = 7201;
      raft = true;
    };
    flaredb = {
      port = 7300;
      raftPort = 7301;
      raft = true;
    };
  };
  serviceNames = attrNames catalogue;
  raftServices = filter (s: catalogue.${s}.raft) serviceNames;

  # What each role runs unless its class or the node says otherwise. The
  # raft groups are the control plane: they run on control-plane nodes only.
  roleServices = {
    control-plane = [
      "iam"
      "chainfire"
      "flaredb"
    ];
    worker = [ ];
  };
  roles = attrNames roleServices;

  # Options the schema derives and settings may not set, or members would
  # disagree about the group (iam: only its port, which others' URLs name).
  # The text says where to set them instead.
  protectedKeys = s: if catalogue.${s}.raft then attrNames derivedKeys else [ "port" ];
  derivedKeys = {
    node_id = "it is the node's raftId";
    port = "set services.<service>.port";
    raft_address = "it is the node's address and services.<service>.raftPort";
    advertise_url = "it is http://<node address>:<port>";
    initial_cluster = "it lists every node that runs the service";
  };

  topAttrs = [
    "name"
    "network"
    "stateDir"
    "perNodeDirs"
    "secretsDir"
    "classes"
    "pools"
    "services"
    "nodes"
  ];
  nodeAttrs = [
    "name"
    "address"
    "pool"
    "class"
    "role"
    "disks"
    "services"
    "settings"
    "raftId"
  ];

  # --- small helpers --------------------------------------------------------

  d = description;
  get = attrs: n: def: if isAttrs attrs && hasAttr n attrs then attrs.${n} else def;
  # [ msg ] unless ok: problems are lists, so checks concatenate.
  need = ok: msg: if ok then [ ] else [ msg ];
  show = builtins.toJSON;
  quoteList = xs: concatStringsSep ", " xs;
  known = xs: "(known: ${quoteList xs})";
  # `where: unknown attribute 'x' (known: ...)` for each attribute not in `allowed`.
  unknownAttrs =
    where: allowed: attrs:
    map (a: "${where}: unknown attribute '${a}' ${known allowed}") (
      filter (a: !elem a allowed) (attrNames attrs)
    );
  isName = s: isString s && match "[a-z][a-z0-9-]*" s != null;
  isPort = p: isInt p && p >= 1 && p <= 65535;
  count = x: xs: length (filter (y: y == x) xs);
  # The items of xs that appear more than once, each named once.
  duplicates =
    xs:
    foldl' (acc: x: if count x xs > 1 && !elem x acc then acc ++ [ x ] else acc) [ ] xs;
  mod = a: b: a - b * (builtins.div a b);
  pow2 = n: foldl' (acc: _: acc * 2) 1 (genList (x: x) n);

  # "10.0.0.1" -> [ 10 0 0 1 ], or null when it is not a dotted quad.
  octet = "(0|[1-9][0-9]?[0-9]?)";
  octets =
    s:
    let
      m = if isString s then match "${octet}\\.${octet}\\.${octet}\\.${octet}" s else null;
      ns = if m == null then [ ] else map builtins.fromJSON m;
    in
    if m == null || any (n: n > 255) ns then null else ns;
  ipInt = os: foldl' (acc: o: acc * 256 + o) 0 os;

  # "10.0.0.0/24" -> { base; prefixLen; size; }, or null when malformed.
  parseCidr =
    s:
    let
      m = if isString s then match "([0-9.]+)/(0|[1-9][0-9]?)" s else null;
      os = if m == null then null else octets (head m);
      len = if m == null then 0 else builtins.fromJSON (elemAt m 1);
    in
    if os == null || len > 32 then
      null
    else
      {
        base = ipInt os;
        prefixLen = len;
        size = pow2 (32 - len);
      };

  # --- stage 1: the shape of the description --------------------------------

  network = get d "network" { };
  cidr = parseCidr (get network "cidr" null);
  classes = get d "classes" { };
  pools = get d "pools" { };
  clusterServices = get d "services" { };
  nodesIn = get d "nodes" [ ];
  stateDir = get d "stateDir" "/var/lib/ultracloud";
  secretsDir = get d "secretsDir" "/etc/ultracloud/secrets";
  perNodeDirs = get d "perNodeDirs" false;

  shapeProblems =
    if !isAttrs d then
      [ "the description must be an attribute set" ]
    else
      unknownAttrs "cluster" topAttrs d
      ++ (need (isName (get d "name" null)) "name must be lower-case letters, digits and '-' (got ${show (get d "name" null)})")
      ++ networkProblems
      ++ (need (isString stateDir && stateDir != "") "stateDir must be a non-empty string")
      ++ (need (isString secretsDir && secretsDir != "") "secretsDir must be a non-empty string")
      ++ (need (isBool perNodeDirs) "perNodeDirs must be true or false")
      ++ concatMap (a: need (isAttrs (get d a { })) "${a} must be an attribute set") [
        "classes"
        "pools"
        "services"
      ]
      ++ (
        if !isList nodesIn || nodesIn == [ ] then
          [ "nodes must be a non-empty list" ]
        else
          concatMap (i: need (isAttrs (elemAt nodesIn i)) "nodes[${toString i}] must be an attribute set") (
            genList (i: i) (length nodesIn)
          )
      );

  networkProblems =
    if !isAttrs network then
      [ "network must be an attribute set { cidr; bridge ? null; }" ]
    else
      unknownAttrs "network" [ "cidr" "bridge" ] network
      ++ (
        if cidr == null then
          [ "network.cidr must be an IPv4 network like \"10.0.0.0/24\" (got ${show (get network "cidr" null)})" ]
        else if mod cidr.base cidr.size != 0 then
          [ "network.cidr ${network.cidr} has host bits set after the /${toString cidr.prefixLen}" ]
        else
          [ ]
      )
      ++ (
        let
          b = get network "bridge" null;
        in
        if b == null || isString b && match "[A-Za-z0-9_.-]{1,15}" b != null then
          [ ]
        else
          [ "network.bridge must be an interface name of 1 to 15 characters" ]
      );

  # --- stage 2: each class, pool, service and node on its own --------------

  disksProblems =
    where: disks:
    if !isList disks then
      [ "${where}: disks must be a list of { name; sizeMiB; }" ]
    else
      concatMap (
        dk:
        if !isAttrs dk then
          [ "${where}: each disk must be { name; sizeMiB; }" ]
        else
          unknownAttrs "${where}: disk" [ "name" "sizeMiB" ] dk
          ++ (need (isName (get dk "name" null)) "${where}: a disk name must be lower-case letters, digits and '-'")
          ++ (
            if isInt (get dk "sizeMiB" null) && dk.sizeMiB > 0 then
              [ ]
            else
              [ "${where}: disk ${show (get dk "name" null)}: sizeMiB must be a positive integer" ]
          )
      ) disks
      ++ map (n: "${where}: disk name '${n}' appears more than once") (
        duplicates (map (dk: get dk "name" null) (filter isAttrs disks))
      );

  servicesListProblems =
    where: svcs:
    if !isList svcs || !all isString svcs then
      [ "${where}: services must be a list of service names ${known serviceNames}" ]
    else
      map (s: "${where}: unknown service '${s}' ${known serviceNames}") (filter (s: !hasAttr s catalogue) svcs)
      ++ map (s: "${where}: service '${s}' is listed more than once") (duplicates svcs);

  classProblems = concatMap (
    c:
    let
      cl = classes.${c};
      where = "class '${c}'";
    in
    if !isAttrs cl then
      [ "${where} must be an attribute set { role; disks ? [ ]; services ? [ ... ]; }" ]
    else
      unknownAttrs where [ "role" "disks" "services" ] cl
      ++ (need (elem (get cl "role" null) roles) "${where}: unknown role ${show (get cl "role" null)} ${known roles}")
      ++ disksProblems where (get cl "disks" [ ])
      ++ (if hasAttr "services" cl then servicesListProblems where cl.services else [ ])
  ) (attrNames classes);

  poolProblems = concatMap (
    p:
    let
      pl = pools.${p};
      where = "pool '${p}'";
    in
    if !isAttrs pl then
      [ "${where} must be an attribute set { class; }" ]
    else
      unknownAttrs where [ "class" ] pl
      ++ (
        let
          c = get pl "class" null;
        in
        if isString c && hasAttr c classes then
          [ ]
        else
          [ "${where}: unknown class ${builtins.toJSON c} ${known (attrNames classes)}" ]
      )
  ) (attrNames pools);

  # settings of one service: daemon option names -> string, integer or bool.
  settingsProblems =
    where: svc: s:
    if !isAttrs s then
      [ "${where} must be an attribute set of ${svc} options" ]
    else
      concatMap (
        k:
        let
          v = s.${k};
        in
        (
          if elem k (protectedKeys svc) then
            [ "${where}.${k} cannot be set: ${builtins.replaceStrings [ "<service>" ] [ svc ] derivedKeys.${k}}" ]
          else if match "[a-z][a-z0-9_]*" k == null then
            [ "${where}.${k}: option names are lower-case with '_' for '-' (as in ${svc} --help)" ]
          else
            [ ]
        )
        ++ (need (isString v || isInt v || isBool v) "${where}.${k} must be a string, an integer or a boolean")
      ) (attrNames s);

  clusterServiceProblems = concatMap (
    s:
    let
      sv = clusterServices.${s};
      where = "services.${s}";
      allowed = [ "port" "settings" ] ++ (if get (get catalogue s { }) "raft" false then [ "raftPort" ] else [ ]);
    in
    if !hasAttr s catalogue then
      [ "services: unknown service '${s}' ${known serviceNames}" ]
    else if !isAttrs sv then
      [ "${where} must be an attribute set { port ? ...; settings ? { }; }" ]
    else
      unknownAttrs where allowed sv
      ++ (need (isPort (get sv "port" 1)) "${where}.port must be a port number (1 to 65535)")
      ++ (need (isPort (get sv "raftPort" 1)) "${where}.raftPort must be a port number (1 to 65535)")
      ++ settingsProblems "${where}.settings" s (get sv "settings" { })
  ) (attrNames clusterServices);

  # A node with everything inherited from its pool, class and role filled in.
  # Only read once stage 2 passed (lookups assume valid references).
  resolve =
    i: n:
    let
      poolName = get n "pool" null;
      className = get n "class" (if poolName == null then null else pools.${poolName}.class);
      cl = if className == null then { } else classes.${className};
      role = get n "role" (get cl "role" null);
    in
    {
      inherit (n) name address;
      index = i;
      pool = poolName;
      class = className;
      inherit role;
      disks = get n "disks" (get cl "disks" [ ]);
      services = get n "services" (get cl "services" (get roleServices role [ ]));
      settings = get n "settings" { };
      raftId = get n "raftId" (i + 1);
    };

  nodeProblems =
    i: n:
    let
      nm = get n "name" null;
      where = if isName nm then "node '${nm}'" else "nodes[${toString i}]";
      addr = get n "address" null;
      os = octets addr;
      poolName = get n "pool" null;
      poolOk = poolName == null || isString poolName && hasAttr poolName pools;
      className = get n "class" null;
      classOk = className == null || isString className && hasAttr className classes;
      poolClass = if poolName != null && poolOk then pools.${poolName}.class else null;
      r = resolve i n;
    in
    unknownAttrs where nodeAttrs n
    ++ (need (isName nm) "${where}: name must be lower-case letters, digits and '-' (got ${builtins.toJSON nm})")
    ++ (
      if os == null then
        [ "${where}: address ${builtins.toJSON addr} is not an IPv4 address" ]
      else if builtins.div (ipInt os) cidr.size != builtins.div cidr.base cidr.size then
        [ "${where}: address ${addr} is outside network ${network.cidr}" ]
      else
        [ ]
    )
    ++ (need (poolOk) "${where}: unknown pool ${builtins.toJSON poolName} ${known (attrNames pools)}")
    ++ (need (classOk) "${where}: unknown class ${builtins.toJSON className} ${known (attrNames classes)}")
    ++ (
      if className != null && poolClass != null && className != poolClass then
        [ "${where}: class '${className}' differs from the class '${poolClass}' of its pool '${poolName}'" ]
      else
        [ ]
    )
    ++ (
      if !(poolOk && classOk) then
        [ ]
      else if r.role == null then
        [ "${where}: no role: give it a role, or a class or pool that has one" ]
      else if !elem r.role roles then
        [ "${where}: unknown role ${builtins.toJSON r.role} ${known roles}" ]
      else
        disksProblems where r.disks
        ++ servicesListProblems where r.services
        ++ nodeSettingsProblems where r
    )
    ++ (
      if isInt r.raftId && r.raftId > 0 then [ ] else [ "${where}: raftId must be a positive integer" ]
    );

  nodeSettingsProblems =
    where: r:
    if !isAttrs r.settings then
      [ "${where}: settings must be an attribute set: service -> { option = value; }" ]
    else
      concatMap (
        s:
        if !hasAttr s catalogue then
          [ "${where}: settings: unknown service '${s}' ${known serviceNames}" ]
        else if isList r.services && !elem s r.services then
          [ "${where}: settings.${s}: ${s} does not run on this node" ]
        else
          settingsProblems "${where}: settings.${s}" s r.settings.${s}
      ) (attrNames r.settings);

  entryProblems =
    classProblems
    ++ poolProblems
    ++ clusterServiceProblems
    ++ concatMap (i: nodeProblems i (elemAt nodesIn i)) (genList (i: i) (length nodesIn));

  # --- stage 3: the nodes together ------------------------------------------

  nodes = genList (i: resolve i (elemAt nodesIn i)) (length nodesIn);
  runs = s: filter (n: elem s n.services) nodes;
  names = ns: quoteList (map (n: n.name) ns);
  controlPlane = filter (n: n.role == "control-plane") nodes;
  portOf = s: get (get clusterServices s { }) "port" catalogue.${s}.port;
  raftPortOf = s: get (get clusterServices s { }) "raftPort" catalogue.${s}.raftPort;
  usedServices = filter (s: runs s != [ ]) serviceNames;

  # [ { what = "chainfire's API port"; port = 7200; } ... ] of services in use.
  portUses = concatMap (
    s:
    [
      {
        what = "${s}'s API port";
        port = portOf s;
      }
    ]
    ++ (
      if catalogue.${s}.raft then
        [
          {
            what = "${s}'s raft port";
            port = raftPortOf s;
          }
        ]
      else
        [ ]
    )
  ) usedServices;

  clusterProblems =
    map (x: "node name '${x}' appears more than once") (duplicates (map (n: n.name) nodes))
    ++ map (a: "nodes ${names (filter (n: n.address == a) nodes)} have the same address ${a}") (
      duplicates (map (n: n.address) nodes)
    )
    ++ map (id: "nodes ${names (filter (n: n.raftId == id) nodes)} have the same raftId ${toString id}") (
      duplicates (map (n: n.raftId) nodes)
    )
    ++ (
      if controlPlane == [ ] then
        [ "no control-plane node: give at least one node (1, 3 or 5) the role \"control-plane\"" ]
      else if mod (length controlPlane) 2 == 0 then
        [
          "${toString (length controlPlane)} control-plane nodes (${names controlPlane}): the control plane needs an odd number (1, 3 or 5) so that a majority survives a partition"
        ]
      else
        [ ]
    )
    ++ concatMap (
      s:
      map (n: "node '${n.name}': ${s} runs on control-plane nodes only (its role is ${n.role})") (
        filter (n: n.role != "control-plane") (runs s)
      )
      ++ (
        let
          k = length (runs s);
        in
        if k > 0 && mod k 2 == 0 then
          [ "${s} runs on ${toString k} nodes (${names (runs s)}): a raft group needs an odd number" ]
        else
          [ ]
      )
    ) raftServices
    ++ (
      if runs "iam" == [ ] && filter (s: s != "iam") usedServices != [ ] then
        [ "no node runs iam, which the other services check tokens against (here: ${quoteList (filter (s: s != "iam") usedServices)})" ]
      else
        [ ]
    )
    ++ map (p: "port ${toString p} is used twice: ${quoteList (map (u: u.what) (filter (u: u.port == p) portUses))}") (
      duplicates (map (u: u.port) portUses)
    );

  # --- the bootstrap document -----------------------------------------------

  dataDir = n: s: if perNodeDirs then "${stateDir}/${n.name}/${s}" else "${stateDir}/${s}";
  byRaftId = ns: sort (a: b: a.raftId < b.raftId) ns;
  initialCluster =
    s:
    concatStringsSep "," (
      map (m: "${toString m.raftId}=${m.address}:${toString (raftPortOf s)}") (byRaftId (runs s))
    );
  # A node's IAM: its own when it runs one, else the first node's that does.
  jwksUrl =
    n:
    let
      iam = if elem "iam" n.services then n else head (runs "iam");
    in
    "http://${iam.address}:${toString (portOf "iam")}/api/v1/keys";

  derived = {
    iam = n: {
      listen = n.address;
      port = portOf "iam";
      store = "sqlite:${dataDir n "iam"}/iam.db";
      signing_key_file = "${secretsDir}/iam-signing-key.pem";
      bootstrap_token_file = "${secretsDir}/iam-bootstrap-token";
      cred_master_key_file = "${secretsDir}/iam-master-key";
    };
    chainfire = raftConfig "chainfire";
    flaredb = raftConfig "flaredb";
  };

  raftConfig = s: n: {
    node_id = n.raftId;
    listen = n.address;
    port = portOf s;
    advertise_url = "http://${n.address}:${toString (portOf s)}";
    raft_address = "${n.address}:${toString (raftPortOf s)}";
    initial_cluster = initialCluster s;
    data_dir = dataDir n s;
    iam_jwks_url = jwksUrl n;
  };

  serviceConfig =
    n: s:
    derived.${s} n // get (get clusterServices s { }) "settings" { } // get n.settings s { };

  nodeDocument = n: {
    inherit (n)
      name
      address
      role
      class
      pool
      ;
    disks = map (dk: {
      inherit (dk) name;
      size_mib = dk.sizeMiB;
    }) n.disks;
    services = listToAttrs (
      map (s: {
        name = s;
        value = serviceConfig n s;
      }) n.services
    );
  };

  document = {
    inherit (d) name;
    network = {
      inherit (network) cidr;
      bridge = get network "bridge" null;
      prefix_len = cidr.prefixLen;
    };
    state_dir = stateDir;
    secrets_dir = secretsDir;
    nodes = map nodeDocument nodes;
  };

  # Later stages assume the earlier ones passed, so the first stage with
  # problems is the one reported.
  problems =
    foldl' (acc: stage: if acc != [ ] then acc else stage { }) [ ] [
      (_: shapeProblems)
      (_: entryProblems)
      (_: clusterProblems)
    ];
  clusterName = if isAttrs d && isString (get d "name" null) then " '${d.name}'" else "";
in
if problems == [ ] then
  document
else
  throw "invalid UltraCloud cluster${clusterName}:\n- ${concatStringsSep "\n- " problems}"
