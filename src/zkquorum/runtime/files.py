"""Reading the configuration files: zoo.cfg, its dynamic file, ``.dynamic.next``, myid.

ZooKeeper reads them with ``Properties.load(InputStream)``, i.e. as ISO-8859-1; so do we.
"""

from __future__ import annotations

import os
from pathlib import Path

from zkquorum.config.errors import ConfigError
from zkquorum.config.properties import load_properties
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
