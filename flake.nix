# flake.nix - UltraCloud for Nix: the daemons (one derivation built with the
# project's Makefile, its unit tests run as the check phase), a development
# shell, the NixOS modules, the canonical machines built from the cluster
# schema's examples, the quickstart and the six-node harness as apps, and
# checks that force every profile to evaluate. docs/nix.md describes each.
#   nix build                     all daemons (nix build .#iam: the same, iam as main program)
#   nix develop                   compilers, libraries, pytest, cppcheck, valgrind
#   nix run .#single-node-quickstart [-- --smoke]
#   nix run .#cluster -- fresh-smoke   (from the repository root)
#   nix flake check               package build and unit tests, profile evaluation, cluster.json
{
  description = "UltraCloud: a self-hosted cloud of small C daemons with REST/JSON APIs";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # The daemons under services/ (one binary each), in start order.
      services = [
        "iam"
        "chainfire"
        "flaredb"
      ];

      # Source without VCS data and without the top-level build output and
      # test state directories.
      src = lib.cleanSourceWith {
        src = lib.cleanSource ./.;
        filter =
          path: _type:
          !(builtins.elem (lib.removePrefix (toString ./. + "/") (toString path)) [
            "build"
            "build-san"
            "build-fuzz"
            "work"
          ]);
      };

      ultracloud =
        pkgs:
        pkgs.stdenv.mkDerivation {
          pname = "ultracloud";
          version = "0.1.0-${self.shortRev or "dirty"}";
          inherit src;

          nativeBuildInputs = [ pkgs.pkg-config ];
          # The Makefile's pkg-config list (raft-cowsql has libraft's API and
          # raft.pc). libvirt and liburing join when plasmavmc and the
          # storage data paths land.
          buildInputs = with pkgs; [
            libmicrohttpd
            jansson
            sqlite
            curl
            openssl
            check
            raft-cowsql
            libuv
          ];

          postPatch = "patchShebangs scripts";
          # The Makefile runs scripts/deps.sh (apt) once per build dir; Nix
          # supplies the libraries, so mark that step done.
          preBuild = "mkdir -p build && touch build/.deps-ok";
          enableParallelBuilding = true;
          makeFlags = [ "PREFIX=${placeholder "out"}" ];

          doCheck = true;
          checkPhase = ''
            runHook preCheck
            scripts/run-unit.sh build
            runHook postCheck
          '';

          meta = {
            description = "UltraCloud daemons (${lib.concatStringsSep ", " services})";
            platforms = lib.platforms.linux;
          };
        };

      pythonFor = pkgs: pkgs.python3.withPackages (p: [ p.pytest p.requests p.pyjwt ]);

      # The cluster schema's examples: the machines below are built from them.
      examples = {
        single-node = import ./nix/examples/single-node.nix;
        three-node-ha = import ./nix/examples/three-node-ha.nix;
        harness = import ./test-cluster/cluster.nix;
      };
      # Descriptions the schema must refuse (each fails evaluation).
      invalidExamples = map (f: ./nix/examples/invalid + "/${f}") (
        builtins.filter (lib.hasSuffix ".nix") (builtins.attrNames (builtins.readDir ./nix/examples/invalid))
      );

      # A NixOS machine from the profile `profile` (x86_64; the profiles hold
      # nothing architecture-specific).
      machine =
        profile:
        lib.nixosSystem {
          modules = [
            self.nixosModules.default
            profile
            { nixpkgs.hostPlatform = lib.mkDefault "x86_64-linux"; }
          ];
        };
      clusterNode =
        document: node: machine (import ./nixos-modules/profiles/cluster-node.nix { inherit document node; });
    in
    {
      packages = forSystems (
        pkgs:
        let
          default = ultracloud pkgs;
        in
        # Each service is the same build with its own main program (meta
        # only: the output is shared, nothing builds twice).
        { inherit default; }
        // lib.genAttrs services (
          s: default.overrideAttrs (old: { meta = old.meta // { mainProgram = s; }; })
        )
      );

      devShells = forSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.system}.default ];
          packages = with pkgs; [
            (pythonFor pkgs)
            cppcheck
            clang-tools
            valgrind
            curl
            openssl
            sqlite
            jq
            iproute2
            nftables
          ];
          # The test scripts default to Debian's /usr/bin/python3.
          shellHook = ''
            export UC_PYTHON=${pythonFor pkgs}/bin/python3
          '';
        };
      });

      apps = forSystems (
        pkgs:
        let
          bin = "${self.packages.${pkgs.system}.default}/bin";
          app = drv: {
            type = "app";
            program = lib.getExe drv;
          };
          quickstart = pkgs.writeShellApplication {
            name = "ultracloud-single-node-quickstart";
            runtimeInputs = with pkgs; [
              bash
              coreutils
              curl
              openssl
            ];
            # State goes to ./work/quickstart under the current directory.
            text = ''
              export UC_QUICKSTART_BIN_DIR=${bin}
              export UC_PYTHON=${pkgs.python3}/bin/python3
              exec bash ${./scripts/quickstart.sh} "$@"
            '';
          };
          # The harness (test-cluster/run.sh: a lane name, or a command of
          # test-cluster/cluster) runs from the checkout, its state in
          # work/cluster there, with the daemons of this flake's build.
          cluster = pkgs.writeShellApplication {
            name = "ultracloud-test-cluster";
            runtimeInputs = with pkgs; [
              coreutils
              git
              iproute2
              nftables
              util-linux
              e2fsprogs
              openssl
              curl
            ];
            text = ''
              root=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
              if [ ! -f "$root/test-cluster/run.sh" ]; then
                  echo "ultracloud-test-cluster: no test-cluster/run.sh under $root;" >&2
                  echo "ultracloud-test-cluster: run this from an UltraCloud checkout." >&2
                  exit 2
              fi
              cd "$root"
              export UC_CLUSTER_BIN=''${UC_CLUSTER_BIN:-${bin}}
              export UC_PYTHON=${pythonFor pkgs}/bin/python3
              exec sh test-cluster/run.sh "$@"
            '';
          };
        in
        {
          single-node-quickstart = app quickstart;
          cluster = app cluster;
        }
      );

      nixosModules =
        let
          withPackage =
            file: names:
            { pkgs, lib, ... }:
            {
              imports = [ file ];
              services.ultracloud = lib.genAttrs names (s: {
                package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.${s};
              });
            };
        in
        lib.genAttrs services (s: withPackage (./nixos-modules + "/${s}.nix") [ s ])
        // {
          cluster = ./nixos-modules/cluster.nix;
          default = withPackage ./nixos-modules/default.nix services;
        };

      # The canonical machines: the quickstart, and the three control-plane
      # nodes of nix/examples/three-node-ha.nix (one per node it names).
      nixosConfigurations =
        { single-node-quickstart = machine ./nixos-modules/profiles/single-node-quickstart.nix; }
        // lib.listToAttrs (
          map (n: lib.nameValuePair n.name (clusterNode examples.three-node-ha n.name)) examples.three-node-ha.nodes
        );

      checks = forSystems (
        pkgs:
        let
          # Forcing each machine's system derivation evaluates every module,
          # assertion and unit; nothing is built.
          toplevels = lib.mapAttrsToList (
            name: m: "${name} ${builtins.unsafeDiscardStringContext m.config.system.build.toplevel.drvPath}"
          ) self.nixosConfigurations;
          refused = lib.all (f: !(builtins.tryEval (builtins.deepSeq (import f) true)).success) invalidExamples;
        in
        {
          build = self.packages.${pkgs.system}.default;

          profiles = pkgs.writeText "ultracloud-profiles-eval" (
            assert lib.assertMsg refused "an invalid example under nix/examples/invalid evaluated";
            lib.concatStringsSep "\n" (
              toplevels ++ map (e: builtins.toJSON e) (builtins.attrValues examples)
            )
          );

          # test-cluster/cluster.json is committed for machines without Nix:
          # it must equal the evaluation of test-cluster/cluster.nix.
          cluster-json =
            pkgs.runCommand "ultracloud-cluster-json"
              {
                nativeBuildInputs = [ pkgs.jq ];
                generated = builtins.toJSON examples.harness;
                passAsFile = [ "generated" ];
              }
              ''
                jq -S . ${./test-cluster/cluster.json} >committed
                jq -S . "$generatedPath" >generated
                diff -u committed generated
                touch $out
              '';
        }
      );
    };
}
