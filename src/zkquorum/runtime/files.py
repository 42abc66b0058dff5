"""Reading the configuration files: zoo.cfg, its dynamic file, ``.dynamic.next``, myid.

ZooKeeper reads them with ``Properties.load(InputStream)``, i.e. as ISO-8859-1; so do we.
"""

from __future__ import annotations

import os
from pathlib import Path

from zkquorum.config.errors import ConfigError
from zkquorum.config.properties import load_properties
from zkquorum.config.verifier import QuorumVerifier
from zkquorum.config.zoocfg import QuorumConfig, parse_zoo_cfg


def _read(path: Path, shown: str) -> str:
    try:
        return path.read_bytes().decode("iso-8859-1")
    except FileNotFoundError:
        raise ConfigError("file not found", path=shown) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a config file", path=shown) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=shown) from None


def load_config(path: str | os.PathLike[str]) -> QuorumConfig:
    """Read zoo.cfg and whatever it points to, then interpret it (pure)."""
    cfg_path = Path(path)
    shown = str(path)
    text = _read(cfg_path, shown)
    props = load_properties(text, shown)

    myid_text = myid_path = None
    data_dir = props.get("dataDir")
    if data_dir is not None and data_dir.value.strip():
        myid = Path(data_dir.value.strip()) / "myid"
        if myid.is_file():
            myid_path = str(myid)
            myid_text = _read(myid, myid_path)

    dynamic_text = dynamic_path = next_text = next_path = None
    dyn = props.get("dynamicConfigFile")
    if dyn is not None:
        dynamic_path = dyn.value.strip()
        try:
            dynamic_text = Path(dynamic_path).read_bytes().decode("iso-8859-1")
        except OSError:
            dynamic_text = None  # parse_zoo_cfg reports it at the dynamicConfigFile line
        nxt = Path(shown + ".dynamic.next")
        if nxt.is_file():
            next_path = str(nxt)
            next_text = _read(nxt, next_path)

    return parse_zoo_cfg(
        text,
        path=shown,
        myid_text=myid_text,
        myid_path=myid_path,
        dynamic_text=dynamic_text,
        dynamic_path=dynamic_path,
        next_dynamic_text=next_text,
        next_dynamic_path=next_path,
    )


def zoo_cfg_text(config: QuorumConfig) -> str | None:
    """zoo.cfg as read (ISO-8859-1, as ``java.util.Properties``), or None if unreadable."""
    try:
        return Path(config.path).read_bytes().decode("iso-8859-1")
    except OSError:
        return None


def zoo_cfg_properties(config: QuorumConfig) -> dict[str, str]:
    """zoo.cfg's keys and trimmed values again (``QuorumConfig`` keeps only what it uses;
    the server reads the rest, 3.8's ``-Dzookeeper.*`` switches, from here)."""
    try:
        text = Path(config.path).read_bytes().decode("iso-8859-1")
    except OSError:
        return {}
    return {e.key.strip(): e.value.strip() for e in load_properties(text, config.path)}


# -- writing: what a reconfig leaves on disk ---------------------------------------------------

_STATIC_MEMBERSHIP = ("server.", "group", "weight", "dynamicConfigFile", "peerType")


def _dynamic_lines(verifier: QuorumVerifier, *, keep_version: bool) -> str:
    """``QuorumPeerConfig#writeDynamicConfig``: ``key=value`` lines sorted as strings, no
    trailing newline; the version line only in the ``.next`` file."""
    lines = []
    for line in verifier.to_zk_string().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "version" and not keep_version:
            continue
        lines.append(f"{key.strip()}={value.strip()}")
    return "\n".join(sorted(lines))


def _atomic_write(path: Path, text: str) -> None:
    """``AtomicFileWritingIdiom``: ``<name>.tmp`` beside it, fsynced, renamed over it."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(text.encode("iso-8859-1", "replace"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_dynamic_config(
    config_path: str | os.PathLike[str], verifier: QuorumVerifier, *, activated: bool, sid: int
) -> Path:
    """Write ``verifier`` as 3.8 does (``QuorumPeer#setQuorumVerifier`` /
    ``#setLastSeenQuorumVerifier`` with ``writeToDisk``); returns the file written.

    Activated: ``<zoo.cfg>.dynamic.<hex version>``, then zoo.cfg rewritten without its
    membership keys (server, group, weight, peerType, dynamicConfigFile, and every
    ``clientPort*`` key when our entry carries its own client address) and with
    ``dynamicConfigFile=`` pointing at the new file, then ``.dynamic.next`` removed.
    zoo.cfg keeps its other lines in their order (3.8 rewrites them in hash order and
    drops comments; we drop comments too).  Not activated: ``<zoo.cfg>.dynamic.next``,
    version line included.  Every file is replaced atomically.
    """
    cfg = Path(config_path)
    nxt = Path(str(cfg) + ".dynamic.next")
    if not activated:
        _atomic_write(nxt, _dynamic_lines(verifier, keep_version=True))
        return nxt
    dyn = Path(f"{cfg}.dynamic.{verifier.version:x}")
    _atomic_write(dyn, _dynamic_lines(verifier, keep_version=False))
    mine = verifier.all_members.get(sid)
    erase_client = (
        mine is not None and mine.client_addr is not None and not mine.client_addr_from_static
    )
    props = load_properties(cfg.read_bytes().decode("iso-8859-1"), str(cfg))
    kept = []
    for entry in props:
        if entry.key.startswith(_STATIC_MEMBERSHIP):
            continue
        if erase_client and entry.key.startswith("clientPort"):
            continue
        kept.append(f"{entry.key}={entry.value}\n")
    kept.append(f"dynamicConfigFile={dyn.resolve()}\n")
    _atomic_write(cfg, "".join(kept))
    if nxt.exists():
        nxt.unlink()
    return dyn
