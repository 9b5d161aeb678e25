"""Deterministic .rdb bodies for exported ElastiCache snapshots.

A shard's data is named by a seed and a key count (ShardData); its body is an
RDB file (version 11) holding `keys` string keys whose names and values derive
from the seed and the shard number, so the same data always gives the same
bytes (size, ETag and SHA-256 can be checked after any copy). Two auxiliary
fields, `sc-seed` and `sc-keys`, carry the seed and count, so a replication
group seeded from the object (CreateReplicationGroup SnapshotArns) holds the
same data and exports the same bytes again. The trailer is the CRC-64 (Jones)
Redis computes; it is not checked against a real Redis.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass

MAGIC = b"REDIS0011"
OP_AUX, OP_SELECTDB, OP_RESIZEDB, OP_EOF = 0xFA, 0xFE, 0xFB, 0xFF
TYPE_STRING = 0x00
_CRC64_POLY = 0x95AC9329AC4BC9B5  # Jones, reflected


@dataclass(frozen=True)
class ShardData:
    """What one shard holds: the data's seed and how many keys."""

    seed: str
    keys: int


def _crc64_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC64_POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc64_table()


def crc64(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def _length(n: int) -> bytes:
    """RDB length encoding: 6-bit, 14-bit or 32-bit."""
    if n < 0x40:
        return bytes([n])
    if n < 0x4000:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    return b"\x80" + struct.pack(">I", n)


def _string(value: bytes) -> bytes:
    return _length(len(value)) + value


def body(data: ShardData, shard: int) -> bytes:
    """The .rdb bytes of shard number `shard` (1-based) holding `data`."""
    out = bytearray(MAGIC)
    for name, value in (("redis-ver", "7.2.4"), ("sc-seed", data.seed), ("sc-keys", str(data.keys))):
        out += bytes([OP_AUX]) + _string(name.encode()) + _string(value.encode())
    out += bytes([OP_SELECTDB]) + _length(0) + bytes([OP_RESIZEDB]) + _length(data.keys) + _length(0)
    for i in range(data.keys):
        digest = hashlib.sha256(f"{data.seed}/{shard}/{i}".encode()).hexdigest()
        out += bytes([TYPE_STRING]) + _string(f"key:{shard}:{i}".encode()) + _string(digest.encode())
    out.append(OP_EOF)
    out += struct.pack("<Q", crc64(bytes(out)))
    return bytes(out)


def is_rdb(value: bytes) -> bool:
    """Whether the bytes look like an RDB file (magic and version)."""
    return re.match(rb"^REDIS\d{4}", value) is not None


def shard_data(value: bytes) -> ShardData | None:
    """The data an object made by body() holds; None for other RDB files."""
    found: dict[str, str] = {}
    position = len(MAGIC)
    while position < len(value) and value[position] == OP_AUX and len(found) < 3:
        position += 1
        name, position = _read_string(value, position)
        text, position = _read_string(value, position)
        found[name] = text
    if "sc-seed" not in found or not found.get("sc-keys", "").isdigit():
        return None
    return ShardData(found["sc-seed"], int(found["sc-keys"]))


def _read_length(value: bytes, position: int) -> tuple[int, int]:
    """(length, position after it) of an RDB length as _length writes it."""
    kind = value[position] >> 6
    if kind == 0:
        return value[position] & 0x3F, position + 1
    if kind == 1:
        return ((value[position] & 0x3F) << 8) | value[position + 1], position + 2
    return struct.unpack(">I", value[position + 1:position + 5])[0], position + 5


def _read_string(value: bytes, position: int) -> tuple[str, int]:
    length, start = _read_length(value, position)
    return value[start:start + length].decode("utf-8", "replace"), start + length
