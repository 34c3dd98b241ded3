"""The byte layout of a ``.halm`` file around its FlatBuffer.

A module file is three parts::

    header (96 bytes) | FlatBuffer (module.fbs) | padding | data section

The header is little-endian:

    offset  size  field
    0       4     magic b"HALM"
    4       4     format version (uint32)  -- magic and version stay here in every version
    8       4     flags (uint32, 0 in version 1)
    12      4     header size (96)
    16      8     total file length
    24      8     FlatBuffer offset
    32      8     FlatBuffer length
    40      8     data section offset (a multiple of 64)
    48      8     data section length
    56      32    BLAKE2b-256 digest of the whole file except these 32 bytes
    88      8     reserved (0)

The data section holds constants and variant payloads, each starting at a multiple of 64 from
the section's start (and so of the file's), which lets a memory-mapped file hand them out as
aligned, zero-copy memoryviews. The FlatBuffer refers to them by (offset, length) relative to
the data section.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

MAGIC = b"HALM"
HEADER = struct.Struct("<4sIIIQQQQQ32sQ")
HEADER_SIZE = HEADER.size  # 96
DIGEST_OFFSET = 56
DIGEST_SIZE = 32
ALIGNMENT = 64

assert HEADER_SIZE == 96


@dataclass(frozen=True)
class Header:
    version: int
    flags: int
    header_size: int
    total_length: int
    fb_offset: int
    fb_length: int
    data_offset: int
    data_length: int
    digest: bytes

    def pack(self) -> bytes:
        return HEADER.pack(MAGIC, self.version, self.flags, self.header_size, self.total_length,
                           self.fb_offset, self.fb_length, self.data_offset, self.data_length,
                           self.digest, 0)

    @classmethod
    def unpack(cls, data: bytes | memoryview) -> Header:
        (_magic, version, flags, header_size, total, fb_off, fb_len, data_off, data_len,
         digest, _reserved) = HEADER.unpack_from(data, 0)
        return cls(version, flags, header_size, total, fb_off, fb_len, data_off, data_len,
                   bytes(digest))


def align(n: int, alignment: int = ALIGNMENT) -> int:
    return (n + alignment - 1) // alignment * alignment


def content_digest(data: bytes | bytearray | memoryview) -> bytes:
    """The digest stored in the header: over every byte of the file but the digest field."""
    view = memoryview(data)
    h = hashlib.blake2b(digest_size=DIGEST_SIZE)
    h.update(view[:DIGEST_OFFSET])
    h.update(view[DIGEST_OFFSET + DIGEST_SIZE:])
    return h.digest()


def seal(data: bytearray) -> None:
    """Write the content digest of ``data`` (a complete file) into its header, in place."""
    data[DIGEST_OFFSET:DIGEST_OFFSET + DIGEST_SIZE] = content_digest(data)
