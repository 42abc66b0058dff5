"""A quorum-port driver never leaves the peer hanging: a bug or a disk error ends the phase."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from zkquorum.config.zoocfg import parse_zoo_cfg
from zkquorum.runtime import quorum_io
from zkquorum.runtime.quorum_port import LearnerClient
from zkquorum.runtime.storage import LoadedState, Storage


def config(tmp_path: Path) -> object:
    text = (
        f"tickTime=100\ninitLimit=5\nsyncLimit=2\ndataDir={tmp_path}\n"
        "server.1=127.0.0.1:1:2\nserver.2=127.0.0.1:3:4\nserver.3=127.0.0.1:5:6\n"
    )
    return parse_zoo_cfg(text, myid_text="1")


def test_a_task_that_dies_ends_the_phase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken_connect(self: object, deadline: float) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(quorum_io.LeaderLink, "_connect", broken_connect)

    async def main() -> None:
        client = LearnerClient(config(tmp_path), Storage(tmp_path), 3)  # type: ignore[arg-type]
        client.start()
        try:
            outcome = await asyncio.wait_for(client.outcomes.get(), 5)
        finally:
            await client.close()
        assert outcome.kind == "failed"
        assert outcome.reason is not None and "internal error" in outcome.reason
        assert "a bug" in outcome.reason

    asyncio.run(main())


def test_a_database_that_cannot_load_fails_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = Storage(tmp_path)

    def broken_load() -> LoadedState:
        raise RuntimeError("a bug")

    monkeypatch.setattr(storage, "load", broken_load)

    async def main() -> None:
        client = LearnerClient(config(tmp_path), storage, 3)  # type: ignore[arg-type]
        try:
            with pytest.raises(RuntimeError, match="a bug"):
                client.start()
        finally:
            await client.close()

    asyncio.run(main())
