"""compat - fit the description's options to the binaries actually built.

The description is written for the daemons as they are meant to be; a
binary may lag behind. An option the binary's --help does not list is an
error naming it, with one bridge: `advertise_url` (each member's own API
URL) becomes the older static `peer_urls` list of every member's URL. Each
bridge used is noted, and status and result.json show the notes.
"""

from .description import clip
from .errors import UsageError
from .procs import binary_options


class Compat:
    def __init__(self):
        self.notes = set()

    def translate(self, d, cfg):
        if not d.present():
            return cfg
        known = binary_options(d.binary)
        out = {}
        for key, val in cfg.items():
            if key.replace("_", "-") in known:
                out[key] = val
            elif key == "advertise_url" and "peer-urls" in known:
                out["peer_urls"] = self.peer_urls(d)
                self.notes.add("%s has no --advertise-url: each member gets --peer-urls "
                               "listing every member's advertise_url instead" % d.binary)
            else:
                raise UsageError("%s: option '%s' of the description is unknown to %s "
                                 "(not in its --help)" % (d.label, clip(key), d.binary))
        return out

    @staticmethod
    def peer_urls(d):
        urls = {}
        for other in d.cl.all_daemons(d.name):
            raw = other.raw_config()
            if "node_id" in raw and "advertise_url" in raw:
                urls[raw["node_id"]] = raw["advertise_url"]
        return ",".join("%d=%s" % (k, urls[k]) for k in sorted(urls))
