"""Hosts with two networks each, made of Linux network namespaces and veth pairs.

    with TwoNetworks(3) as nets:        # hosts 1..3, networks 1 and 2
        nets.addr(host=2, net=1)        # '10.231.1.2'
        nets.exec_prefix(2)             # ['ip', 'netns', 'exec', 'zkq...-h2']
        nets.set_network(1, up=False)   # network 1 fails (its switch stops forwarding)

A "switch" namespace holds one bridge per network; every host namespace has ``eth1`` and
``eth2``, veth pairs whose other ends are ports of those bridges.  Everything is created
inside namespaces this object made (names unique per run) - the machine's own interfaces
and routes are never touched - and removed again on exit, whatever happened.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from types import TracebackType

SUBNET = "10.231"


def why_not_available() -> str | None:
    """None when this process may make namespaces; else the reason."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is missing (apt-get install iproute2)"
    probe = f"zkqprobe{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` is not allowed here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


class TwoNetworks:
    def __init__(self, hosts: int) -> None:
        self.tag = f"zkq{secrets.token_hex(3)}"
        self.hosts = list(range(1, hosts + 1))
        self.switch = f"{self.tag}-sw"
        self.made: list[str] = []

    def ns(self, host: int) -> str:
        return f"{self.tag}-h{host}"

    def addr(self, host: int, net: int) -> str:
        return f"{SUBNET}.{net}.{host}"

    def exec_prefix(self, host: int) -> list[str]:
        return ["ip", "netns", "exec", self.ns(host)]

    def __enter__(self) -> TwoNetworks:
        try:
            for name in [self.switch, *(self.ns(h) for h in self.hosts)]:
                _ip("netns", "add", name)
                self.made.append(name)
                _ip("-n", name, "link", "set", "lo", "up")
            for net in (1, 2):
                _ip("-n", self.switch, "link", "add", f"br{net}", "type", "bridge")
                _ip("-n", self.switch, "link", "set", f"br{net}", "up")
                for h in self.hosts:
                    port = f"v{net}h{h}"
                    _ip(
                        "-n", self.switch, "link", "add", port, "type", "veth",
                        "peer", "name", f"eth{net}", "netns", self.ns(h),
                    )  # fmt: skip
                    _ip("-n", self.switch, "link", "set", port, "master", f"br{net}", "up")
                    _ip("-n", self.ns(h), "addr", "add", f"{self.addr(h, net)}/24", "dev",
                        f"eth{net}")  # fmt: skip
                    _ip("-n", self.ns(h), "link", "set", f"eth{net}", "up")
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        """Delete our namespaces (their veths and bridges go with them)."""
        for name in reversed(self.made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
        self.made.clear()

    def set_network(self, net: int, *, up: bool) -> None:
        """Network ``net`` works (``up``) or silently drops every packet (bridge down)."""
        _ip("-n", self.switch, "link", "set", f"br{net}", "up" if up else "down")

    def tcp_connections(self, host: int) -> list[tuple[str, str]]:
        """(local, peer) address:port of the host's established TCP connections."""
        out = subprocess.run(
            [*self.exec_prefix(host), "ss", "-Htn", "state", "established"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        pairs = []
        for line in out.splitlines():
            cols = line.split()
            if len(cols) >= 4:
                pairs.append((cols[-2], cols[-1]))
        return pairs
