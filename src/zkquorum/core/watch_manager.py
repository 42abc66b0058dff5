"""Watches as 3.8's ``WatchManager`` pair keeps them (data and child), with persistent and
persistent-recursive watches.  Watchers are connection numbers.  Facts:
``docs/spec/zk-server.md`` §2.5.

* create: NodeCreated to the path's data watches; NodeChildrenChanged to the parent's
  child watches;
* delete: NodeDeleted to the path's data and child watches (once per watcher);
  NodeChildrenChanged to the parent's;
* setData: NodeDataChanged to the data watches;
* standard watches are one-shot; PERSISTENT watches stay and see every event of their
  path; PERSISTENT_RECURSIVE watches of the path and every ancestor see every event but
  NodeChildrenChanged.
"""

from __future__ import annotations

from collections import defaultdict

from zkquorum.wire.client_records import EventType, WatcherType

_DATA_EVENTS = frozenset(
    {EventType.NODE_CREATED, EventType.NODE_DELETED, EventType.NODE_DATA_CHANGED}
)
_CHILD_EVENTS = frozenset({EventType.NODE_DELETED, EventType.NODE_CHILDREN_CHANGED})


def _ancestors(path: str) -> list[str]:
    out = [path]
    while path != "/":
        slash = path.rfind("/")
        path = path[:slash] or "/"
        out.append(path)
    return out


class WatchManager:
    def __init__(self) -> None:
        self.data: defaultdict[str, set[int]] = defaultdict(set)
        self.child: defaultdict[str, set[int]] = defaultdict(set)
        self.persistent: defaultdict[str, set[int]] = defaultdict(set)
        self.recursive: defaultdict[str, set[int]] = defaultdict(set)
        self._by_watcher: defaultdict[int, set[tuple[int, str]]] = defaultdict(set)

    def _add(self, table: defaultdict[str, set[int]], kind: int, path: str, w: int) -> None:
        table[path].add(w)
        self._by_watcher[w].add((kind, path))

    def add_data(self, path: str, watcher: int) -> None:
        self._add(self.data, 0, path, watcher)

    def add_child(self, path: str, watcher: int) -> None:
        self._add(self.child, 1, path, watcher)

    def add_persistent(self, path: str, watcher: int, *, recursive: bool) -> None:
        if recursive:
            self._add(self.recursive, 3, path, watcher)
        else:
            self._add(self.persistent, 2, path, watcher)

    def _tables(self) -> tuple[defaultdict[str, set[int]], ...]:
        return (self.data, self.child, self.persistent, self.recursive)

    def _drop(self, table: defaultdict[str, set[int]], path: str, w: int) -> None:
        ws = table.get(path)
        if ws is not None:
            ws.discard(w)
            if not ws:
                del table[path]

    def trigger(self, path: str, event: EventType) -> list[int]:
        """The watchers to tell about ``event`` on ``path``, each once; one-shot watches go."""
        out: dict[int, None] = {}
        if event in _DATA_EVENTS:
            for w in self.data.pop(path, ()):
                self._by_watcher[w].discard((0, path))
                out[w] = None
        if event in _CHILD_EVENTS:
            for w in self.child.pop(path, ()):
                self._by_watcher[w].discard((1, path))
                out[w] = None
        if self.persistent:
            for w in self.persistent.get(path, ()):
                out[w] = None
        if self.recursive and event is not EventType.NODE_CHILDREN_CHANGED:
            for p in _ancestors(path):
                for w in self.recursive.get(p, ()):
                    out[w] = None
        return list(out)

    def has_or_remove(self, path: str, watcher: int, wtype: int, *, remove: bool) -> bool:
        """checkWatches / removeWatches: whether ``watcher`` has such a watch on ``path``
        (and remove it)."""
        kinds: list[tuple[int, defaultdict[str, set[int]]]] = []
        if wtype in (WatcherType.DATA, WatcherType.ANY):
            kinds.append((0, self.data))
        if wtype in (WatcherType.CHILDREN, WatcherType.ANY):
            kinds.append((1, self.child))
        if wtype == WatcherType.ANY:
            kinds.append((2, self.persistent))
            kinds.append((3, self.recursive))
        found = False
        for kind, table in kinds:
            if watcher in table.get(path, ()):
                found = True
                if remove:
                    self._drop(table, path, watcher)
                    self._by_watcher[watcher].discard((kind, path))
        return found

    def remove_watcher(self, watcher: int) -> None:
        """Everything a closed connection watched."""
        tables = self._tables()
        for kind, path in self._by_watcher.pop(watcher, ()):
            self._drop(tables[kind], path, watcher)

    def paths_of(self, watcher: int) -> list[str]:
        """The paths ``watcher`` watches, each once, sorted (``wchc``)."""
        return sorted({path for _, path in self._by_watcher.get(watcher, ())})

    def count(self) -> int:
        return sum(len(ws) for t in self._tables() for ws in t.values())
