"""Zxid arithmetic (ZooKeeper's ``ZxidUtils``): a signed 64-bit ``epoch << 32 | counter``."""

from __future__ import annotations

LONG_MIN = -(1 << 63)
LONG_MAX = (1 << 63) - 1


def make_zxid(epoch: int, counter: int) -> int:
    """``(epoch << 32) | (counter & 0xffffffff)`` as a signed 64-bit long."""
    return to_long((epoch << 32) | (counter & 0xFFFFFFFF))


def zxid_epoch(zxid: int) -> int:
    """The epoch of a zxid: an arithmetic shift, as Java's ``zxid >> 32``."""
    return zxid >> 32


def zxid_counter(zxid: int) -> int:
    return zxid & 0xFFFFFFFF


def zxid_hex(zxid: int) -> str:
    """Lower-case hex without ``0x``, as ``Long.toHexString`` (two's complement)."""
    return format(zxid & 0xFFFFFFFFFFFFFFFF, "x")


def to_long(value: int) -> int:
    """Wrap an integer to a signed 64-bit long, as Java arithmetic does."""
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value & (1 << 63) else value
