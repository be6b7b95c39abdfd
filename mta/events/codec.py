"""The one encoding of events: canonical JSON lines and their mappings.

Every writer of events (``events.jsonl``, the SQLite queue store, the live
relay's log, ``mxsim demo --events``) goes through :func:`encode`, so two
runs compare byte for byte:

* one JSON object per event, keys sorted, compact separators
  (``","`` and ``":"``), ASCII only;
* ``kind`` names the class; every field is present;
* fields annotated ``float`` (or ``float | None``) are always written as
  floats (``0.0``, never ``0``, whatever the emitter passed), and floats use
  Python's shortest round-trip ``repr``, the same on every platform;
* tuples are written as lists (and read back as tuples);
* NaN and infinity are refused: they are not JSON.

Decoding (:func:`from_dict`, :func:`decode`) knows every kind registered
when it is called (see :mod:`mta.events.base`) and raises
:class:`~mta.events.base.EventError` saying what is wrong.

Encoding runs once per event of a run, so what it needs of a class (field
names, which of them are floats or tuples) is worked out once per class,
not with ``dataclasses.fields()`` per event.
"""
from __future__ import annotations

import json
from dataclasses import MISSING, fields
from operator import attrgetter
from typing import Any

from mta.events.base import Event, EventError, event_class

__all__ = ["decode", "encode", "from_dict", "to_dict"]

# One encoder for every line: json.dumps with options builds a new one per call.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)
# JSONEncoder.encode builds this C encoder anew on every call, with a
# circular-reference check an event never needs; built once and called
# directly, with the same options, it writes the same bytes in 70% of the
# time (a run encodes every event it logs).  None without the _json module.
_C_ENCODE = json.encoder.c_make_encoder and json.encoder.c_make_encoder(
    None, _ENCODER.default, json.encoder.encode_basestring_ascii, None, ":", ",",
    True, False, False)   # sort_keys, skipkeys, allow_nan


class _Layout:
    """What the codec needs of one event class."""

    __slots__ = ("names", "values", "tuples", "required", "line_keys", "line_values")

    def __init__(self, cls: type[Event]) -> None:
        fs = fields(cls)
        self.names: tuple[str, ...] = tuple(f.name for f in fs)
        # Every field's value in one call (a field-by-field getattr loop was
        # most of the cost of writing a run's log).
        getter = attrgetter(*self.names)
        self.values = getter if len(self.names) > 1 else (lambda e: (getter(e),))
        # Annotations are strings (``from __future__ import annotations``).
        self.tuples = frozenset(f.name for f in fs
                                if str(f.type).replace(" ", "").startswith("tuple["))
        self.required = tuple(f.name for f in fs
                              if f.default is MISSING and f.default_factory is MISSING)
        # For encode: every key of the line already in sorted order (``kind``
        # read from the class through the instance); tuples need no copy,
        # the encoder writes them as lists.
        self.line_keys = tuple(sorted(("kind", *self.names)))
        self.line_values = attrgetter(*self.line_keys)


_LAYOUTS: dict[type, _Layout] = {}


def _layout(cls: type[Event]) -> _Layout:
    layout = _LAYOUTS.get(cls)
    if layout is None:
        layout = _LAYOUTS[cls] = _Layout(cls)
    return layout


def to_dict(event: Event) -> dict[str, Any]:
    """The canonical mapping of ``event``: ``kind`` plus every field, float
    fields as floats (as every event holds them), tuple fields as lists."""
    layout = _layout(type(event))
    out: dict[str, Any] = {"kind": event.kind}
    out.update(zip(layout.names, layout.values(event)))
    # Float fields need nothing here: events make them floats on construction.
    for name in layout.tuples:
        v = out[name]
        if v.__class__ is tuple:
            out[name] = list(v)
    return out


def encode(event: Event) -> str:
    """One canonical JSON line for ``event``, without the newline."""
    try:
        if _C_ENCODE is None:
            return _ENCODER.encode(to_dict(event))
        layout = _layout(type(event))
        return "".join(_C_ENCODE(dict(zip(layout.line_keys, layout.line_values(event))), 0))
    except ValueError as exc:   # NaN or infinity somewhere in the event
        raise EventError(f"{event.kind}: cannot encode: {exc}") from None


def from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an event from a :func:`to_dict` mapping; raises EventError."""
    if not isinstance(data, dict):
        raise EventError(f"an event is a JSON object, got {type(data).__name__}")
    kwargs = dict(data)
    kind = kwargs.pop("kind", None)
    cls = event_class(kind)
    layout = _layout(cls)
    unknown = sorted(set(kwargs) - set(layout.names))
    if unknown:
        raise EventError(f"{kind}: unknown fields {unknown}")
    missing = [n for n in layout.required if n not in kwargs]
    if missing:
        raise EventError(f"{kind}: missing fields {missing}")
    for name in layout.tuples:
        v = kwargs.get(name)
        if isinstance(v, list):
            kwargs[name] = tuple(v)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise EventError(f"{kind}: {exc}") from None


def decode(line: str | bytes) -> Event:
    """Parse one JSON line into an event; raises EventError naming what is
    wrong (malformed JSON, not an object, or an invalid event)."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise EventError(f"malformed JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(data, dict):
        raise EventError("not a JSON object")
    try:
        return from_dict(data)
    except EventError as exc:
        raise EventError(f"invalid event: {exc}") from None

