"""Configuration errors: always one line naming the file and the line."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration that ZooKeeper (or zkquorum) refuses.

    ``str(err)`` is one line: ``zoo.cfg:7: what is wrong; how to fix it``.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        return f"{where}{self.message}"

    def at(self, path: str | None, line: int | None) -> ConfigError:
        """The same error, located (keeps a location already set)."""
        if self.path is not None:
            return self
        return ConfigError(self.message, path=path, line=line if line else self.line)
