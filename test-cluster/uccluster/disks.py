"""disks - each node's state on its own small filesystem, for disk faults.

A node's first declared disk becomes a sparse image file holding an ext4
filesystem, loop-mounted at the node's state directory. That makes
fill-disk real (the filesystem fills up, writes get ENOSPC) and slow-disk
possible: the node's daemons go into a blkio cgroup that throttles writes
to that loop device (cgroup v1 blkio.throttle; it bounds direct and
synchronous writes, which is how raft writes its log).
"""

import errno
import json
import os
import shutil

from . import sh
from .errors import HarnessError, Unavailable

FILLER = ".uc-fill-disk"
CGROUP_ROOT = "/sys/fs/cgroup/blkio"


def probe():
    """(True, "") when loop-mounted node disks can be made, else (False, why)."""
    if os.geteuid() != 0:
        return False, "not root (loop mounts need root)"
    if not os.path.exists("/dev/loop-control"):
        return False, "no /dev/loop-control (no loop devices)"
    for tool in ("losetup", "mkfs.ext4", "mount", "umount"):
        if shutil.which(tool) is None:
            return False, "'%s' is not installed" % tool
    return True, ""


def mountpoints():
    """Absolute mount points of this mount namespace."""
    out = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            out.add(line.split()[4].replace("\\040", " "))
    return out


class Disks:
    def __init__(self, desc, repo, state_dir, reason=""):
        self.desc = desc
        self.repo = repo
        self.state_dir = state_dir
        self.img_dir = os.path.join(state_dir, "disks")
        self.reason = reason  # why disks are off, "" when on
        self.enabled = not reason

    def mountpoint(self, node):
        return os.path.join(self.state_dir, node.name)

    def image(self, node):
        return os.path.join(self.img_dir, "%s-%s.img" % (node.name, node.disks[0]["name"]))

    def mounted(self, node):
        return self.mountpoint(node) in mountpoints()

    def mount_all(self):
        if not self.enabled:
            return
        for node in self.desc.nodes:
            if node.disks and not self.mounted(node):
                self.mount(node)

    def mount(self, node):
        img = self.image(node)
        os.makedirs(self.img_dir, exist_ok=True)
        if not os.path.exists(img):
            with open(img, "wb") as f:
                f.truncate(node.disks[0]["size_mib"] << 20)
            sh.run(["mkfs.ext4", "-q", "-F", "-m", "0", "-L", "uc-" + node.name, img],
                   timeout=120)
        mp = self.mountpoint(node)
        os.makedirs(mp, exist_ok=True)
        # discard: blocks freed inside (fill-disk off) are freed in the image too
        sh.run(["mount", "-o", "loop,discard", img, mp], timeout=60)

    def umount_all(self):
        for node in self.desc.nodes:
            self.unslow(node)
            mp = self.mountpoint(node)
            while mp in mountpoints():
                if not sh.ok(["umount", mp], timeout=60):
                    sh.run(["umount", "-l", mp], timeout=60)

    def _need(self, node):
        if not self.enabled:
            raise Unavailable("disk faults need loop-mounted node disks, which are off here (%s)"
                              % self.reason)
        if not node.disks:
            raise Unavailable("%s declares no disk in the description" % node.name)
        if not self.mounted(node):
            raise HarnessError("%s's disk is not mounted: is the node up?" % node.name)

    # --- fill -------------------------------------------------------------

    def fill(self, node):
        """Write zeros to a filler file until the node's filesystem says
        ENOSPC; returns what was added and what is left."""
        self._need(node)
        path = os.path.join(self.mountpoint(node), FILLER)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        added = 0
        buf = bytes(1 << 20)
        try:
            while True:
                try:
                    n = os.write(fd, buf)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
                if n == 0:
                    break
                added += n
        finally:
            os.close(fd)
        st = os.statvfs(self.mountpoint(node))
        return {"added_bytes": added, "free_bytes": st.f_bavail * st.f_frsize}

    def unfill(self, node):
        self._need(node)
        path = os.path.join(self.mountpoint(node), FILLER)
        size = os.path.getsize(path) if os.path.exists(path) else 0
        if size:
            os.unlink(path)
        return {"removed_bytes": size}

    # --- slow ---------------------------------------------------------------

    def cgroup(self, node):
        return os.path.join(CGROUP_ROOT, "uc-" + node.name)

    def loop_device(self, node):
        mp = self.mountpoint(node)
        with open("/proc/self/mountinfo") as f:
            for line in f:
                parts = line.split()
                if parts[4] == mp:
                    return parts[2]  # major:minor of the mounted device
        raise HarnessError("%s's disk is not mounted" % node.name)

    def slow(self, node, write_iops, pids):
        """Throttle writes to the node's disk to `write_iops` for `pids` and
        for every daemon of the node started later (see join)."""
        self._need(node)
        if not os.path.isdir(CGROUP_ROOT):
            raise Unavailable("slow-disk needs the cgroup v1 blkio controller at %s" % CGROUP_ROOT)
        cg = self.cgroup(node)
        os.makedirs(cg, exist_ok=True)
        dev = self.loop_device(node)
        for knob in ("blkio.throttle.write_iops_device", "blkio.throttle.read_iops_device"):
            with open(os.path.join(cg, knob), "w") as f:
                f.write("%s %d\n" % (dev, write_iops))
        for pid in pids:
            self.join(node, pid)
        with open(os.path.join(self.state_dir, "slow-%s.json" % node.name), "w") as f:
            json.dump({"device": dev, "iops": write_iops}, f)
        return {"device": dev, "iops": write_iops, "pids": list(pids)}

    def join(self, node, pid):
        """Put a newly started daemon of a slowed node into its cgroup."""
        cg = self.cgroup(node)
        if os.path.isdir(cg):
            with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                f.write("%d\n" % pid)

    def unslow(self, node):
        cg = self.cgroup(node)
        if not os.path.isdir(cg):
            return False
        with open(os.path.join(cg, "cgroup.procs")) as f:
            pids = [p.strip() for p in f if p.strip()]
        for pid in pids:
            try:
                with open(os.path.join(CGROUP_ROOT, "cgroup.procs"), "w") as f:
                    f.write(pid + "\n")
            except OSError:
                pass  # exited in between
        os.rmdir(cg)
        marker = os.path.join(self.state_dir, "slow-%s.json" % node.name)
        if os.path.exists(marker):
            os.unlink(marker)
        return True
