# flake.nix - UltraCloud for Nix: the daemons (one derivation built with the
# project's Makefile, its unit tests run as the check phase), a development
# shell, the NixOS modules and the single-node quickstart as an app.
#   nix build            all daemons; nix build .#iam is the same with iam as main program
#   nix develop          compilers, libraries, pytest, cppcheck, valgrind
#   nix run .#single-node-quickstart [-- --smoke]
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

      # The daemons under services/ (one binary each), in quickstart order.
      services = [
        "iam"
        "chainfire"
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
              export UC_QUICKSTART_BIN_DIR=${self.packages.${pkgs.system}.default}/bin
              export UC_PYTHON=${pkgs.python3}/bin/python3
              exec bash ${./scripts/quickstart.sh} "$@"
            '';
          };
        in
        {
          single-node-quickstart = {
            type = "app";
            program = lib.getExe quickstart;
          };
        }
      );

      nixosModules = {
        iam =
          { pkgs, lib, ... }:
          {
            imports = [ ./nixos-modules/iam.nix ];
            services.ultracloud.iam.package = lib.mkDefault self.packages.${pkgs.system}.iam;
          };
        chainfire =
          { pkgs, lib, ... }:
          {
            imports = [ ./nixos-modules/chainfire.nix ];
            services.ultracloud.chainfire.package = lib.mkDefault self.packages.${pkgs.system}.chainfire;
          };
        default =
          { pkgs, lib, ... }:
          {
            imports = [ ./nixos-modules/default.nix ];
            services.ultracloud = lib.genAttrs services (s: {
              package = lib.mkDefault self.packages.${pkgs.system}.${s};
            });
          };
      };
    };
}
