"""The ``llvm-object-<arch>`` payload: a JSON header and the object files it lists.

::

    b"HALLLVM1"  u32 header_length  header (UTF-8 JSON)  object bytes...

header = ``{"triple", "cpu", "features": [llvm names], "entries": [{"symbol", "object"}],
"objects": [[offset, size], ...]}`` with offsets counted from the end of the header. One object
per distinct kernel, so objects can be cached and compiled independently.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

from hal_core.errors import ModuleFormatError

MAGIC = b"HALLLVM1"


@dataclass(frozen=True)
class Payload:
    triple: str
    cpu: str
    features: tuple[str, ...]
    entries: tuple[tuple[str, int], ...]      # (symbol, object index) per entry point
    objects: tuple[bytes, ...]
    binding_sizes: tuple[tuple[int, ...], ...] = ()   # per entry: bytes each binding must hold
    #: per entry: the bindings its code writes (None: every binding, as payloads before it)
    written: tuple[tuple[int, ...], ...] | None = None

    def encode(self) -> bytes:
        offsets, pos = [], 0
        for o in self.objects:
            offsets.append([pos, len(o)])
            pos += len(o)
        header = json.dumps({
            "triple": self.triple, "cpu": self.cpu, "features": list(self.features),
            "entries": [{"symbol": s, "object": i, "binding_sizes": list(sz),
                         **({"written": list(self.written[n])} if self.written else {})}
                        for n, ((s, i), sz) in enumerate(zip(self.entries, self.binding_sizes))],
            "objects": offsets}, sort_keys=True).encode()
        return b"".join([MAGIC, struct.pack("<I", len(header)), header, *self.objects])


def _bad(what: str) -> ModuleFormatError:
    return ModuleFormatError(f"malformed llvm-object payload: {what}; recompile the module "
                             "with --target-backends=llvm-cpu")


def decode(data: bytes | memoryview) -> Payload:
    data = memoryview(data)
    if len(data) < 12 or bytes(data[:8]) != MAGIC:
        raise _bad(f"expected magic {MAGIC!r}, found {bytes(data[:8])!r}")
    (n,) = struct.unpack("<I", data[8:12])
    if 12 + n > len(data):
        raise _bad(f"header of {n} bytes runs past the payload's {len(data)} bytes")
    try:
        h = json.loads(bytes(data[12:12 + n]))
        body = data[12 + n:]
        objects = []
        for off, size in h["objects"]:
            if not (isinstance(off, int) and isinstance(size, int) and 0 <= off
                    and off + size <= len(body)):
                raise _bad(f"object range {off}+{size} outside the {len(body)} data bytes")
            objects.append(bytes(body[off:off + size]))
        entries, sizes, written = [], [], []
        for e in h["entries"]:
            if not 0 <= e["object"] < len(objects):
                raise _bad(f"entry {e['symbol']!r} names object {e['object']}")
            entries.append((str(e["symbol"]), int(e["object"])))
            sizes.append(tuple(int(x) for x in e["binding_sizes"]))
            if "written" in e:
                w = tuple(int(x) for x in e["written"])
                if any(not 0 <= x < len(sizes[-1]) for x in w):
                    raise _bad(f"entry {e['symbol']!r} writes bindings {list(w)} of "
                               f"{len(sizes[-1])}")
                written.append(w)
        if written and len(written) != len(entries):
            raise _bad("some entries say which bindings they write and others do not")
        return Payload(str(h["triple"]), str(h["cpu"]), tuple(map(str, h["features"])),
                       tuple(entries), tuple(objects), tuple(sizes),
                       tuple(written) if written else None)
    except ModuleFormatError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise _bad(f"bad header ({type(exc).__name__}: {exc})") from exc
