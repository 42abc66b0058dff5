"""``java.util.Properties#load``, line for line, remembering where each key was written.

ZooKeeper reads zoo.cfg and the dynamic file with ``Properties.load(InputStream)``, so the
text is ISO-8859-1 and these rules apply:

* natural lines end at ``\\n``, ``\\r`` or ``\\r\\n``; a line whose first non-blank
  character is ``#`` or ``!`` is a comment; blank lines are skipped;
* a line ending in an odd number of backslashes continues on the next line, whose leading
  white space is dropped (a comment line never continues);
* the key ends at the first unescaped ``=``, ``:`` or white space; white space, then one
  ``=`` or ``:``, then white space are skipped; the rest of the line is the value, with its
  trailing white space **kept**;
* escapes: ``\\t \\n \\r \\f``, ``\\uXXXX``; a backslash before any other character
  stands for that character;
* a key given twice: the last value wins (we remember every occurrence for warnings).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zkquorum.config.errors import ConfigError

_WHITESPACE = " \t\f"


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    value: str
    line: int


@dataclass(frozen=True)
class Properties:
    """Loaded properties: the last value of each key, and where it was written."""

    entries: tuple[Entry, ...]
    _by_key: dict[str, Entry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key", {e.key: e for e in self.entries})

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, key: str) -> Entry | None:
        return self._by_key.get(key)

    def keys(self) -> list[str]:
        return list(self._by_key)

    def duplicates(self) -> list[Entry]:
        """Earlier occurrences of keys written more than once (their values were lost)."""
        last = self._by_key
        return [e for e in self.entries if last[e.key] is not e]


def _logical_lines(text: str) -> list[tuple[str, int]]:
    """Join continuation lines; return (logical line, number of its first natural line)."""
    naturals = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[tuple[str, int]] = []
    i = 0
    while i < len(naturals):
        start = i
        line = naturals[i].lstrip(_WHITESPACE)
        i += 1
        if not line or line[0] in "#!":
            continue
        parts = []
        while True:
            trailing = len(line) - len(line.rstrip("\\"))
            if trailing % 2 == 1:
                parts.append(line[:-1])
                if i >= len(naturals):
                    break
                line = naturals[i].lstrip(_WHITESPACE)
                i += 1
                continue
            parts.append(line)
            break
        out.append(("".join(parts), start + 1))
    return out


def _unescape(raw: str, path: str | None, line: int) -> str:
    if "\\" not in raw:
        return raw
    out: list[str] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        i += 1
        if i >= len(raw):
            break
        c = raw[i]
        i += 1
        if c == "u":
            digits = raw[i : i + 4]
            if len(digits) < 4 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise ConfigError(
                    "malformed \\uxxxx escape (Java's Properties needs 4 hex digits)",
                    path=path,
                    line=line,
                )
            out.append(chr(int(digits, 16)))
            i += 4
        else:
            out.append({"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(c, c))
    return "".join(out)


def _split_key(logical: str) -> tuple[str, str]:
    """Split a logical line into raw (still escaped) key and value."""
    n = len(logical)
    i = 0
    has_sep = False
    while i < n:
        c = logical[i]
        if c == "\\":
            i += 2
            continue
        if c in "=:":
            has_sep = True
            break
        if c in _WHITESPACE:
            break
        i += 1
    key_end = min(i, n)
    j = key_end
    while j < n and logical[j] in _WHITESPACE:
        j += 1
    if not has_sep and j < n and logical[j] in "=:":
        j += 1
    elif has_sep:
        j = key_end + 1
    while j < n and logical[j] in _WHITESPACE:
        j += 1
    return logical[:key_end], logical[j:]


def load_properties(text: str, path: str | None = None) -> Properties:
    """Parse Properties text (already decoded; ZooKeeper reads files as ISO-8859-1)."""
    entries = []
    for logical, line in _logical_lines(text):
        raw_key, raw_value = _split_key(logical)
        key = _unescape(raw_key, path, line)
        value = _unescape(raw_value, path, line)
        entries.append(Entry(key, value, line))
    return Properties(tuple(entries))
