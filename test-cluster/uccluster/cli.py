"""cli - `test-cluster/cluster <command>`: parse, dispatch, exit codes.

Exit codes: 0 done, 1 failed, 2 bad usage (unknown command, node, daemon,
lane, or a bad description), 3 not possible on this machine (partitions in
loopback mode), 130 interrupted.
"""

import json
import os
import sys

import requests

from . import description, netns
from .cluster import Cluster, Lock
from .errors import HarnessError, UsageError

USAGE = """usage: test-cluster/cluster <command> [args]

  start                       clean-or-existing state: network, secrets, every node's daemons
  stop                        stop every daemon (SIGTERM), remove namespaces; state stays
  status [--json]             each node and daemon: process, health, raft role
  logs <node> [daemon] [-n N] a daemon's log (all of the node's daemons without one)
  ssh <node> [-- cmd ...]     a shell (or cmd) inside the node's network namespace
  clean                       remove every trace: processes, namespaces, mounts, state
  kill <node> <daemon>        kill -9 one daemon
  stop-node <node>            stop all daemons of a node (SIGTERM)
  start-node <node>           start them again
  partition <nodes...> [-- <nodes...>]
                              cut the nodes off from the rest (or from the second set)
  heal                        remove every partition
  slow-disk <node> [IOPS|off] throttle the node's disk (default 20 IOPS) or stop that
  fill-disk <node> [off]      fill the node's filesystem to ENOSPC, or free it again
  probe                       exit 0 if this machine can run nodes as namespaces,
                              else 3 with the reason (loopback mode only)
  lane <name> [--duration S] [--clients N] [--seed N] [--rounds N]
                              run a lane: fresh-smoke, durability-proof,
                              chainfire-live-membership-proof, consistency

Environment: UC_CLUSTER_BIN (binaries, default build/bin), UC_CLUSTER_MODE
(auto, netns, loopback), UC_CLUSTER_DESCRIPTION (default test-cluster/cluster.json),
UC_CLUSTER_DISKS=0 (no loop-mounted node disks).
"""


def main(argv):
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if argv else 2
    cmd, args = argv[0], argv[1:]
    fn = COMMANDS.get(cmd)
    try:
        if fn is None:
            raise UsageError("unknown command '%s' (see test-cluster/cluster --help)" %
                             description.clip(cmd))
        return fn(args) or 0
    except HarnessError as e:
        print("cluster %s: %s" % (cmd, e), file=sys.stderr)
        return e.exit_code
    except requests.RequestException as e:
        print("cluster %s: %s: %s" % (cmd, type(e).__name__, e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cluster %s: interrupted" % cmd, file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader (e.g. `| head`) went away: not our failure
        sys.stderr.close()
        return 0


def cluster():
    return Cluster(desc_path=os.environ.get("UC_CLUSTER_DESCRIPTION"))


def locked(fn):
    """Run a command that changes the cluster under the harness lock."""
    def wrapper(args):
        with Lock(cluster()):
            return fn(args)
    return wrapper


def nargs(args, lo, hi, usage):
    if not lo <= len(args) <= hi:
        raise UsageError("usage: test-cluster/cluster %s" % usage)


# --- commands -------------------------------------------------------------------


def cmd_start(args):
    nargs(args, 0, 0, "start")
    cl = cluster()
    with Lock(cl):
        warn_mode(cl)
        cl.start()
        cl.token()
    print_status(cl.status())
    return 0


def warn_mode(cl):
    if cl.mode == "loopback":
        print("!!! loopback mode: %s. Nodes run on 127.0.100.x of this host; no partitions."
              % cl.mode_reason, file=sys.stderr)
    if cl.missing():
        print("!!! MISSING BINARIES: %s (not built in %s): not started" % (
            ", ".join(cl.missing()), cl.bin_dir), file=sys.stderr)


def cmd_stop(args):
    nargs(args, 0, 0, "stop")
    cl = cluster()
    with Lock(cl):
        problems = cl.stop()
    for p in problems:
        print("problem: %s" % p, file=sys.stderr)
    return 1 if problems else 0


def cmd_status(args):
    nargs(args, 0, 1, "status [--json]")
    if args and args[0] != "--json":
        raise UsageError("status: unknown option '%s'" % description.clip(args[0]))
    cl = cluster()
    cl.attach()
    st = cl.status()
    if args:
        print(json.dumps(st, indent=1))
    else:
        print_status(st)
    return 0


def print_status(st):
    print("mode: %s%s; binaries: %s" % (st["mode"], " (%s)" % st["mode_reason"]
                                         if st["mode_reason"] else "", st["bin_dir"]))
    if st["missing_binaries"]:
        print("!!! MISSING BINARIES: %s" % ", ".join(st["missing_binaries"]))
    for n in st["notes"]:
        print("note: %s" % n)
    if st["token_error"]:
        print("no admin token (raft roles unknown): %s" % st["token_error"])
    for name, node in st["nodes"].items():
        flags = [node["role"]]
        if node["namespace"] is not None:
            flags.append("ns up" if node["namespace"] else "ns DOWN")
        if node["disk"] is not None:
            flags.append("disk mounted" if node["disk"] else "disk unmounted")
        if node["partition"]:
            flags.append("PARTITIONED")
        print("%s %s  %s" % (name, node["address"], ", ".join(flags)))
        for dname, d in node["daemons"].items():
            extra = " ".join("%s=%s" % (k, v) for k, v in d.items() if k != "state")
            print("    %-10s %-8s %s" % (dname, d["state"], extra))


def cmd_logs(args):
    n = 0
    if "-n" in args:
        i = args.index("-n")
        try:
            n = int(args[i + 1])
        except (IndexError, ValueError):
            raise UsageError("logs: -n takes a number of lines")
        args = args[:i] + args[i + 2:]
    nargs(args, 1, 2, "logs <node> [daemon] [-n N]")
    cl = cluster()
    ds = [cl.daemon(args[0], args[1])] if len(args) == 2 else \
        [d for d in cl.all_daemons() if d.node.name == cl.desc.node(args[0]).name]
    for d in ds:
        if len(ds) > 1:
            print("==> %s <==" % d.log_path)
        try:
            with open(d.log_path, "r", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            print("(no log yet: %s)" % d.log_path)
            continue
        print("\n".join(lines[-n:] if n else lines))
    return 0


def cmd_ssh(args):
    if not args:
        raise UsageError("usage: test-cluster/cluster ssh <node> [-- cmd ...]")
    cl = cluster()
    node = cl.desc.node(args[0])
    rest = args[1:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    elif rest:
        raise UsageError("ssh: a command goes after '--'")
    if cl.mode != "netns":
        print("loopback mode (%s): no namespace; this is a host shell" % cl.mode_reason,
              file=sys.stderr)
    elif netns.ns_name(node.name) not in netns.existing():
        raise HarnessError("%s's namespace does not exist: run `test-cluster/cluster start`"
                           % node.name)
    cmd = rest or [os.environ.get("SHELL", "/bin/bash")]
    env = dict(os.environ, UC_NODE=node.name, PS1="[%s] \\w# " % node.name)
    argv = cl.net.wrap(node.name, cmd)
    os.chdir(cl.repo)
    os.execvpe(argv[0], argv, env)


def cmd_clean(args):
    nargs(args, 0, 0, "clean")
    cl = cluster()
    with Lock(cl):
        killed = cl.clean()
    print("clean: %s removed%s" % (cl.state_dir, ", killed pids %s" % killed if killed else ""))
    return 0


@locked
def cmd_kill(args):
    nargs(args, 2, 2, "kill <node> <daemon>")
    cl = cluster()
    d = cl.daemon(args[0], args[1])
    pid = d.kill()
    print("%s: %s" % (d.label, "killed pid %d (SIGKILL)" % pid if pid else "was not running"))
    return 0


@locked
def cmd_stop_node(args):
    nargs(args, 1, 1, "stop-node <node>")
    cl = cluster()
    problems = cl.stop_node(args[0])
    for p in problems:
        print("problem: %s" % p, file=sys.stderr)
    print("%s: stopped" % cl.desc.node(args[0]).name)
    return 1 if problems else 0


@locked
def cmd_start_node(args):
    nargs(args, 1, 1, "start-node <node>")
    cl = cluster()
    node = cl.desc.node(args[0])
    cl.attach()
    started = cl.start_node(node.name)
    print("%s: started %s" % (node.name, ", ".join(started) or "nothing (no daemons)"))
    return 0


@locked
def cmd_partition(args):
    if not args:
        raise UsageError("usage: test-cluster/cluster partition <nodes...> [-- <nodes...>]")
    cl = cluster()
    if "--" in args:
        i = args.index("--")
        a = [cl.desc.node(x) for x in args[:i]]
        b = [cl.desc.node(x) for x in args[i + 1:]]
    else:
        a = [cl.desc.node(x) for x in args]
        b = [n for n in cl.desc.nodes if n not in a]
    if not a or not b or set(x.name for x in a) & set(x.name for x in b):
        raise UsageError("partition: both sides need nodes, and no node may be on both")
    blocked = cl.net.partition(a, b)
    print("partitioned %s from %s" % (",".join(n.name for n in a), ",".join(n.name for n in b)))
    print(json.dumps(blocked, sort_keys=True))
    return 0


@locked
def cmd_heal(args):
    nargs(args, 0, 0, "heal")
    cluster().net.heal()
    print("healed: no partition rules left")
    return 0


@locked
def cmd_slow_disk(args):
    nargs(args, 1, 2, "slow-disk <node> [IOPS|off]")
    cl = cluster()
    node = cl.desc.node(args[0])
    arg = args[1] if len(args) == 2 else "20"
    if arg == "off":
        print("%s: %s" % (node.name, "disk throttle removed" if cl.disks.unslow(node)
                          else "was not slowed"))
        return 0
    if not arg.isdigit() or not 1 <= int(arg) <= 100000:
        raise UsageError("slow-disk: IOPS must be 1 to 100000 or 'off'")
    pids = [d.pid() for d in cl.all_daemons() if d.node is node and d.pid()]
    print(json.dumps(cl.disks.slow(node, int(arg), pids)))
    return 0


@locked
def cmd_fill_disk(args):
    nargs(args, 1, 2, "fill-disk <node> [off]")
    cl = cluster()
    node = cl.desc.node(args[0])
    if len(args) == 2 and args[1] != "off":
        raise UsageError("fill-disk: the only option is 'off'")
    print(json.dumps(cl.disks.unfill(node) if len(args) == 2 else cl.disks.fill(node)))
    return 0


def cmd_probe(args):
    nargs(args, 0, 0, "probe")
    can, why = netns.probe()
    if not can:
        print(why)
        return 3
    print("network namespaces: available")
    return 0


def cmd_lane(args):
    if not args:
        raise UsageError("usage: test-cluster/cluster lane <name> [--duration S] [--clients N] "
                         "[--seed N]")
    from .lanes import runner
    runner.lane_module(args[0])
    opts = lane_opts(args[1:])
    return runner.run(args[0], opts, desc_path=os.environ.get("UC_CLUSTER_DESCRIPTION"),
                      argv=args)


def lane_opts(args):
    opts = {}
    names = {"--duration": ("duration", 5, 3600), "--clients": ("clients", 1, 32),
             "--seed": ("seed", 0, 2 ** 31), "--rounds": ("rounds", 1, 20)}
    i = 0
    while i < len(args):
        if args[i] not in names:
            raise UsageError("lane: unknown option '%s' (--duration, --clients, --seed, "
                             "--rounds)" % description.clip(args[i]))
        key, lo, hi = names[args[i]]
        try:
            val = int(args[i + 1])
        except (IndexError, ValueError):
            raise UsageError("lane: %s takes an integer" % args[i])
        if not lo <= val <= hi:
            raise UsageError("lane: %s must be %d to %d" % (args[i], lo, hi))
        opts[key] = val
        i += 2
    return opts


COMMANDS = {
    "start": cmd_start, "stop": cmd_stop, "status": cmd_status, "logs": cmd_logs,
    "ssh": cmd_ssh, "clean": cmd_clean, "kill": cmd_kill, "stop-node": cmd_stop_node,
    "start-node": cmd_start_node, "partition": cmd_partition, "heal": cmd_heal,
    "slow-disk": cmd_slow_disk, "fill-disk": cmd_fill_disk, "lane": cmd_lane,
    "probe": cmd_probe,
}
