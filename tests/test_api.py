"""The library API: QuorumPeer objects on loopback ports, in one event loop (and the
blocking wrapper, with its own thread)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.interop.zkserver import free_ports
from tests.runtime.helpers import run
from zkquorum import BlockingQuorumPeer, Leadership, PeerClosed, QuorumPeer, ServerState
from zkquorum.api import Subscription
from zkquorum.runtime.storage import StorageError

TICK_MS = 100
LEADING, FOLLOWING, LOOKING = ServerState.LEADING, ServerState.FOLLOWING, ServerState.LOOKING


def layout(tmp_path: Path, sids: tuple[int, ...] = (1, 2, 3)) -> dict[int, Path]:
    """zoo.cfg + dataDir/myid per peer on free loopback ports; returns the config paths."""
    ports = free_ports(3 * len(sids))
    lines = [
        f"server.{sid}=127.0.0.1:{ports[3 * i]}:{ports[3 * i + 1]}" for i, sid in enumerate(sids)
    ]
    out = {}
    for i, sid in enumerate(sids):
        d = tmp_path / f"peer{sid}"
        d.mkdir()
        (d / "myid").write_text(str(sid))
        cfg = d / "zoo.cfg"
        cfg.write_text(
            f"tickTime={TICK_MS}\ninitLimit=10\nsyncLimit=5\ndataDir={d}\n"
            f"clientPortAddress=127.0.0.1\nclientPort={ports[3 * i + 2]}\n"
            + "\n".join(lines)
            + "\n"
        )
        out[sid] = cfg
    return out


@contextlib.asynccontextmanager
async def peers(cfgs: dict[int, Path], **kwargs: object) -> AsyncIterator[dict[int, QuorumPeer]]:
    started: dict[int, QuorumPeer] = {}
    async with contextlib.AsyncExitStack() as stack:
        for sid, cfg in cfgs.items():
            started[sid] = await stack.enter_async_context(QuorumPeer(cfg, **kwargs))  # type: ignore[arg-type]
        yield started


async def collect(sub: Subscription, until: Callable[[Leadership], bool]) -> list[Leadership]:
    seen = []
    async with asyncio.timeout(10):
        async for value in sub:
            seen.append(value)
            if until(value):
                return seen
    return seen


def test_three_peers_one_established_leader_with_a_fencing_token(tmp_path: Path) -> None:
    cfgs = layout(tmp_path)

    async def scenario() -> None:
        async with peers(cfgs) as ps:
            subs = {sid: p.changes() for sid, p in ps.items()}
            epoch = await ps[3].wait_for_leadership(timeout=10)
            assert epoch == 1  # fresh data dirs: the first epoch
            assert ps[3].fencing_token == 1 and ps[3].is_leader
            for sid in (1, 2):
                v = await ps[sid].wait_for(lambda v: v.established, timeout=10)
                assert (v.role, v.leader, v.epoch) == (FOLLOWING, 3, 1)
                assert ps[sid].fencing_token is None and not ps[sid].is_leader
            # The leader's subscriber saw the whole story in order.
            seen = await collect(subs[3], lambda v: v.is_leader)
            assert [(v.role, v.established) for v in seen][-2:] == [
                (LEADING, False),
                (LEADING, True),
            ]
            assert seen[0].role is LOOKING
            assert ps[3].status().state is LEADING
            assert not ps[1].step_down()  # only a leader can step down
        # Closing: every subscriber sees a last LOOKING value, then the iteration ends.
        for sub in subs.values():
            rest = [v async for v in sub]
            assert rest and rest[-1].role is LOOKING and rest[-1].epoch is None
        assert all(p.closed and p.fencing_token is None for p in ps.values())
        with pytest.raises(PeerClosed):
            await ps[3].wait_for_leadership()
        assert [v async for v in ps[3].changes()] == [ps[3].current]

    run(scenario)  # fails on a leaked task or file descriptor
    for cfg in cfgs.values():
        v2 = cfg.parent / "version-2"
        assert (v2 / "acceptedEpoch").read_text() == "1"
        assert (v2 / "currentEpoch").read_text() == "1"


async def new_leader(ps: dict[int, QuorumPeer], above: int, timeout: float = 15) -> QuorumPeer:
    """The peer that becomes the established leader of an epoch greater than ``above``."""
    waits = {
        asyncio.ensure_future(p.wait_for(lambda v: v.is_leader and (v.epoch or 0) > above)): p
        for p in ps.values()
    }
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in waits:
            t.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
    assert done, f"no leader with an epoch above {above} within {timeout} s"
    return waits[done.pop()]


def test_raising_callback_makes_the_leader_step_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfgs = layout(tmp_path)
    calls: list[Leadership] = []

    def fragile(value: Leadership) -> None:
        calls.append(value)
        if value.is_leader and value.epoch == 1:
            raise RuntimeError("cannot start the service")

    async def scenario() -> None:
        async with peers({1: cfgs[1], 2: cfgs[2]}) as ps:
            async with QuorumPeer(cfgs[3], on_change=fragile) as p3:
                ps[3] = p3
                # Sid 3 led epoch 1 and stepped down at once; whoever wins next (sid 3 again
                # if the others still see its vote, else 2) leads epoch 2.
                leader = await new_leader(ps, above=1)
                assert leader.fencing_token == 2
                for p in ps.values():
                    if p is not leader:
                        v = await p.wait_for(lambda v: v.established and v.epoch == 2, 10)
                        assert v.leader == leader.my_id and p.fencing_token is None
            assert p3.current.role is LOOKING

    with caplog.at_level(logging.INFO, logger="zkquorum"):
        run(scenario)
    states = [(v.role, v.epoch, v.established) for v in calls]
    i = states.index((LEADING, 1, True))
    assert states[i + 1] == (LOOKING, None, False)  # stepped down right after the error
    assert (LEADING, 1, True) not in states[i + 1 :]
    text = caplog.text
    assert "leadership change handler failed" in text
    assert "RuntimeError: cannot start the service" in text
    assert "stepping down as leader (epoch 1): the leadership callback raised" in text
    assert "LEADING ended: stepped down" in text


def test_async_listener_that_raises_makes_the_leader_step_down(tmp_path: Path) -> None:
    cfgs = layout(tmp_path)

    async def scenario() -> None:
        failures = 0

        async def on_change(value: Leadership) -> None:
            nonlocal failures
            if value.is_leader and failures == 0:
                failures += 1
                await asyncio.sleep(0.01)
                raise ValueError("lost the lock file")

        async with peers(cfgs) as ps:
            sub = ps[3].changes()
            remove = ps[3].add_listener(on_change)
            assert await ps[3].wait_for_leadership(timeout=10) == 1
            leader = await new_leader(ps, above=1)
            remove()
            assert failures == 1
            led: list[Leadership] = []

            def after_leading(v: Leadership) -> bool:
                if v.is_leader:
                    led.append(v)
                return bool(led) and v.role is LOOKING

            seen = await collect(sub, after_leading)
            assert seen[-2].is_leader and seen[-2].epoch == 1
            # An explicit step down works the same way and brings epoch 3.
            assert leader.step_down("maintenance")
            assert leader.fencing_token is None  # at once, before the port is even closed
            assert (await new_leader(ps, above=2)).fencing_token == 3

    run(scenario)


def test_wait_for_times_out_and_a_failed_start_closes_everything(tmp_path: Path) -> None:
    cfgs = layout(tmp_path)
    v2 = cfgs[1].parent / "version-2"
    v2.mkdir()
    (v2 / "acceptedEpoch").write_text("1")
    (v2 / "currentEpoch").write_text("2")

    async def scenario() -> None:
        peer = QuorumPeer(cfgs[1])
        with pytest.raises(StorageError, match="The accepted epoch, 1 is less than the current"):
            await peer.start()
        assert peer.closed
        (v2 / "acceptedEpoch").write_text("2")
        async with QuorumPeer(cfgs[1]) as alone:  # no quorum: never a leader
            with pytest.raises(TimeoutError):
                await alone.wait_for_leadership(timeout=0.3)
            assert alone.current.role is LOOKING

    run(scenario)


def test_subscription_keeps_the_newest_values_when_behind() -> None:
    def value(epoch: int) -> Leadership:
        return Leadership(LEADING, 1, epoch, True, 1, 1)

    async def scenario() -> None:
        sub = Subscription(value(0), backlog=3)
        for e in range(1, 6):
            sub._push(value(e))
        assert sub.dropped == 3
        sub._end()
        assert [v.epoch async for v in sub] == [3, 4, 5]

    asyncio.run(scenario())


def test_blocking_wrapper_owns_one_thread(tmp_path: Path) -> None:
    cfgs = layout(tmp_path)
    before = set(threading.enumerate())
    seen: list[Leadership] = []
    ps = {
        sid: BlockingQuorumPeer(cfg, on_change=seen.append if sid == 3 else None)
        for sid, cfg in cfgs.items()
    }
    try:
        for p in ps.values():
            p.start()
        names = {t.name for t in set(threading.enumerate()) - before}
        assert {"zkquorum-peer-1", "zkquorum-peer-2", "zkquorum-peer-3"} <= names
        assert ps[3].wait_for_leadership(timeout=10) == 1
        assert ps[3].fencing_token == 1
        follower = ps[1].wait_for(lambda v: v.established, timeout=10)
        assert (follower.role, follower.leader) == (FOLLOWING, 3)
        changes = ps[3].changes(timeout=5)
        assert next(changes).is_leader
        changes.close()
        assert seen[-1].is_leader
    finally:
        for p in ps.values():
            p.close()
    assert seen[-1].role is LOOKING  # the listener heard that leadership ended
    assert set(threading.enumerate()) <= before  # its thread (and asyncio's executor) ended
    with pytest.raises(PeerClosed):
        _ = ps[3].current
    # Every port is free again.
    for cfg in cfgs.values():
        for line in cfg.read_text().splitlines():
            if line.startswith("clientPort="):
                with socket.socket() as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("127.0.0.1", int(line.split("=")[1])))


def test_example_leader_service_fences_the_deposed_leader() -> None:
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [
            sys.executable,
            str(root / "examples" / "leader_service.py"),
            "demo",
            "--interval",
            "0.05",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "zombie write: STALE 2" in proc.stdout
    assert "refused owner=zombie with stale token 1 (< 2)" in proc.stderr


def test_async_listeners_hear_the_close(tmp_path: Path) -> None:
    cfgs = layout(tmp_path)
    heard: list[Leadership] = []

    async def slow_release(value: Leadership) -> None:
        if value.role is LOOKING and heard:
            await asyncio.sleep(0.05)  # e.g. hand the lock back
        heard.append(value)

    async def scenario() -> None:
        async with (
            peers({1: cfgs[1], 2: cfgs[2]}),
            QuorumPeer(cfgs[3], on_change=slow_release) as p3,
        ):
            await p3.wait_for_leadership(timeout=10)

    run(scenario)
    assert any(v.is_leader for v in heard)
    assert heard[-1].role is LOOKING
