"""What every event kind shares: the base class, its validation, the registry.

An event is a frozen, slotted, keyword-only dataclass deriving from
:class:`Event` with a ``kind`` class variable.  Defining such a class
registers it under its ``kind`` (:func:`event_kinds`, :func:`event_class`),
so the codec can decode every kind whose module has been imported: the mail
events of :mod:`mta.events`, and the run and world events of ``sim.events``,
which the simulation's log readers import.

Construction validates (the h11 style): ``t`` is a number, ``host`` is
named, every field annotated with a ``Literal`` holds one of its values, and
then the kind's own :meth:`Event._validate` runs.  It also makes every field
annotated ``float`` (or ``float | None``) a float when given an int, so an
event in memory is exactly the event its canonical line decodes to (the
codec writes those fields as floats): a run judged from memory and the same
run judged from ``events.jsonl`` read the same values.  An event that could not
have happened raises :class:`EventError`, which is our bug, not the peer's.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

__all__ = ["Event", "EventError", "event_class", "event_kinds", "float_fields", "need"]


class EventError(ValueError):
    """An event was built, or decoded, with fields that cannot describe a real fact."""


_KINDS: dict[str, type["Event"]] = {}

# Per class: (field name, allowed values) of each Literal-typed field, found
# once from the annotations rather than on every construction.
_ENUMS: dict[type, tuple[tuple[str, frozenset[Any]], ...]] = {}
# Per class: the fields annotated float or float | None.
_FLOATS: dict[type, tuple[str, ...]] = {}


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every event kind.  Subclasses set ``kind`` and add fields."""

    t: float
    host: str

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kw: Any) -> None:
        # No zero-argument super() here: slots=True rebuilds the class and
        # breaks its __class__ cell.  object.__init_subclass__ does nothing.
        if cls.kind:
            old = _KINDS.get(cls.kind)
            # dataclass(slots=True) rebuilds the class, so the same class
            # arrives twice (the rebuilt one last, and it is the one kept);
            # two different classes with one kind is a bug.
            if old is not None and (old.__module__, old.__qualname__) != (
                    cls.__module__, cls.__qualname__):
                raise TypeError(f"duplicate event kind {cls.kind!r}")
            _KINDS[cls.kind] = cls

    def __post_init__(self) -> None:
        t = self.t
        if not isinstance(t, (int, float)) or t != t:
            raise EventError(f"{self.kind}: t must be a number, got {t!r}")
        if not self.host:
            raise EventError(f"{self.kind}: host must be named")
        cls = type(self)
        enums = _ENUMS.get(cls)
        if enums is None:
            enums = _ENUMS[cls] = _literal_fields(cls)
        for name in _FLOATS.get(cls) or float_fields(cls):
            value = getattr(self, name)
            if value.__class__ is int:       # not bool: True is no float
                object.__setattr__(self, name, float(value))
        for name, allowed in enums:
            value = getattr(self, name)
            if value not in allowed:
                raise EventError(f"{self.kind}: {name} must be one of "
                                 f"{', '.join(sorted(allowed))}, got {value!r}")
        self._validate()

    def _validate(self) -> None:
        """Kind-specific checks; subclasses override."""


def _literal_fields(cls: type[Event]) -> tuple[tuple[str, frozenset[Any]], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, frozenset(typing.get_args(hints[f.name])))
                 for f in fields(cls) if typing.get_origin(hints[f.name]) is Literal)


def float_fields(cls: type[Event]) -> tuple[str, ...]:
    """The fields of ``cls`` annotated ``float`` or ``float | None`` (found
    once per class from the annotations, which are strings here)."""
    found = _FLOATS.get(cls)
    if found is None:
        found = _FLOATS[cls] = tuple(f.name for f in fields(cls)
                                     if str(f.type).replace(" ", "") in ("float", "float|None"))
    return found


def event_kinds() -> dict[str, type[Event]]:
    """All registered event kinds by name (sorted, for stable iteration)."""
    return dict(sorted(_KINDS.items()))


def event_class(kind: object) -> type[Event]:
    """The class registered for ``kind``; raises EventError if there is none."""
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise EventError(f"unknown event kind {kind!r}")
    return cls


def need(cond: bool, msg: str) -> None:
    """Raise :class:`EventError` with ``msg`` unless ``cond`` holds."""
    if not cond:
        raise EventError(msg)
