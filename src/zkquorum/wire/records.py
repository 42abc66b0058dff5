"""Frozen records that are cheap to make.

The records of the write path (packets, events, Ready, txns, stats) are frozen, slotted
dataclasses, and one write makes dozens of them.  The ``__init__`` that ``dataclasses``
generates for a frozen class stores each field with ``object.__setattr__``, a generic
attribute lookup per field: about 1.5 times the cost of storing it through the field's
slot descriptor.  :func:`fast_init` gives such a class an ``__init__`` that does the
latter; the class stays what it was (frozen, hashable, ``__match_args__``, ``replace``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")

_FACTORY = object()
"""The default of an argument whose field has a ``default_factory``."""


def fast_init(cls: type[T]) -> type[T]:
    """Replace the generated ``__init__`` of a frozen, slotted dataclass ``cls`` (apply it
    above ``@dataclass(frozen=True, slots=True)``)."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a frozen, slotted dataclass")
    every = cls.__dataclass_fields__  # type: ignore[attr-defined]
    if any(f._field_type is dataclasses._FIELD_INITVAR for f in every.values()):  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__} has InitVar fields")
    space: dict[str, Any] = {"_FACTORY": _FACTORY}
    positional: list[str] = []
    keywords: list[str] = []
    body: list[str] = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = f.name
        space[f"_set_{name}"] = cls.__dict__[name].__set__
        has_default = f.default is not dataclasses.MISSING
        has_factory = f.default_factory is not dataclasses.MISSING
        if has_default:
            space[f"_default_{name}"] = f.default
        if has_factory:
            space[f"_factory_{name}"] = f.default_factory
        if not f.init:
            value = f"_factory_{name}()" if has_factory else f"_default_{name}"
        else:
            arg = name
            if has_default:
                arg += f"=_default_{name}"
            elif has_factory:
                arg += "=_FACTORY"
            (keywords if f.kw_only else positional).append(arg)
            value = f"_factory_{name}() if {name} is _FACTORY else {name}" if has_factory else name
        body.append(f"    _set_{name}(self, {value})")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    args = ", ".join(["self", *positional, *(["*", *keywords] if keywords else [])])
    source = f"def __init__({args}):\n" + ("\n".join(body) or "    pass") + "\n"
    exec(source, space)
    init = space["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


__all__ = ["fast_init"]
