"""Events: keyword-only, validated on construction, one codec for every kind."""
from __future__ import annotations

import dataclasses
import json
import types
import typing

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import sim.events as sev
from mta import events as ev
from mta.events import codec
from mta.events.base import Event, EventError, event_class, event_kinds


def _sample(hint):
    """A valid value for a field of type ``hint``."""
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return typing.get_args(hint)[0]
    if origin in (typing.Union, types.UnionType):
        return _sample(next(a for a in typing.get_args(hint) if a is not type(None)))
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return ("a@example.org",) if item is str else (_sample(item),)
    return {str: "x", int: 250, float: 1.5, bool: True, dict: {"k": [1, 2]}}[hint]


def sample(cls: type[Event]) -> Event:
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _sample(hints[f.name]) for f in dataclasses.fields(cls)})


KINDS = sorted(event_kinds())


def test_mail_and_sim_kinds_are_registered_where_they_belong():
    for name in ("RunStarted", "RunEnded", "LinkUp", "LinkDown", "GuaranteeExpected"):
        cls = getattr(sev, name)
        assert not hasattr(ev, name) and event_class(cls.kind) is cls
        assert cls.__module__ == "sim.events"
    for cls in (ev.HostCrashed, ev.HostRestarted, ev.ComponentError, ev.ConnectAttempt):
        assert event_class(cls.kind) is cls and cls.__module__ == "mta.events"


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_keyword_only_frozen_and_round_trips(kind):
    cls = event_class(kind)
    e = sample(cls)
    with pytest.raises(TypeError):
        cls(e.t, e.host)      # positional construction is refused
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.host = "other"      # type: ignore[misc]
    line = codec.encode(e)
    assert codec.decode(line) == e and codec.from_dict(json.loads(line)) == e
    assert line == json.dumps(json.loads(line), sort_keys=True, separators=(",", ":"))


ENUM_FIELDS = [(kind, f.name, typing.get_args(hint))
               for kind in KINDS
               for f in dataclasses.fields(event_class(kind))
               if typing.get_origin(hint := typing.get_type_hints(event_class(kind))[f.name])
               is typing.Literal]


def test_the_enumerated_fields_the_issue_names_are_typed():
    names = {(k, n) for k, n, _ in ENUM_FIELDS}
    assert {("connect_attempt", "outcome"), ("connect_attempt", "purpose"),
            ("connection_closed", "reason"), ("connection_opened", "service"),
            ("bounced", "reason"), ("dsn_created", "action"), ("released", "trigger"),
            ("policy_decision", "decision"), ("guarantee_expected", "expected")} <= names


@pytest.mark.parametrize("kind, name, values", ENUM_FIELDS,
                         ids=[f"{k}.{n}" for k, n, _ in ENUM_FIELDS])
def test_an_enumerated_field_takes_exactly_its_values(kind, name, values):
    base = sample(event_class(kind))
    for v in values:
        assert getattr(dataclasses.replace(base, **{name: v}), name) == v
    for bad in ("", "nonsense", values[0].upper(), None):
        with pytest.raises(EventError, match=rf"{kind}: {name} must be one of .*got {bad!r}"):
            dataclasses.replace(base, **{name: bad})


def test_vocabularies_are_importable_tuples_of_their_literals():
    assert ev.CONNECT_OUTCOMES == ("connected", "refused", "timeout", "reset")
    assert ev.BOUNCE_REASONS == typing.get_args(ev.BounceReason)
    assert ev.RELEASE_TRIGGERS == ("etrn", "finger", "probe")
    assert ev.DSN_ACTIONS == ("failed", "delayed")
    assert sev.EXPECTATIONS == ("holds", "violated")


def test_float_fields_are_written_as_floats_and_tuples_as_lists():
    d = ev.Deferred(t=3, host="h", msg="h/m1", trace="t", rcpt="a@b", code=451, text="x",
                    next_attempt=300)
    line = codec.encode(d)
    assert '"t":3.0' in line and '"next_attempt":300.0' in line and '"code":451' in line
    a = ev.AttemptStarted(t=1.0, host="h", msg="h/m1", trace="t", rcpts=("a@b", "c@d"),
                          dest_host="mx", dest_ip="192.0.2.1")
    assert codec.to_dict(a)["rcpts"] == ["a@b", "c@d"] and '"preference":null' in codec.encode(a)
    assert codec.decode(codec.encode(a)).rcpts == ("a@b", "c@d")


def _values(hint):
    """Any value a field of type ``hint`` may hold (odd text, nested maps)."""
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return st.sampled_from(typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(st.none() if a is type(None) else _values(a)
                           for a in typing.get_args(hint)))
    if origin is tuple:
        return st.lists(_values(typing.get_args(hint)[0]), max_size=3).map(tuple)
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5),
                        st.floats(allow_nan=False, allow_infinity=False))
    nested = st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=4)),
        max_leaves=6)
    return {str: st.text(min_size=1, max_size=12), int: st.integers(), bool: st.booleans(),
            float: st.floats(allow_nan=False, allow_infinity=False) | st.integers(-5, 5),
            dict: st.dictionaries(st.text(max_size=6), nested, max_size=4)}[hint]


MAPPED_KINDS = [k for k in KINDS if any(str(f.type) == "dict"
                                         for f in dataclasses.fields(event_class(k)))]


@st.composite
def any_event(draw, kinds=KINDS):
    cls = event_class(draw(st.sampled_from(kinds)))
    hints = typing.get_type_hints(cls)
    fields = {f.name: draw(_values(hints[f.name])) for f in dataclasses.fields(cls)}
    fields["host"] = fields["host"] or "h"
    try:
        return cls(**fields)
    except EventError:          # a kind's own rule refused the draw
        assume(False)


REFERENCE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)


# Generation is slow on a loaded machine (nested mappings); that is no failure.
EVENTS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.data_too_large])


@EVENTS
@given(any_event())
def test_encoding_is_the_sorted_compact_ascii_json_of_the_mapping(e):
    assert codec.encode(e) == REFERENCE.encode(codec.to_dict(e))


@EVENTS
@given(any_event(MAPPED_KINDS))
def test_nested_mappings_are_written_with_sorted_keys_too(e):
    assert MAPPED_KINDS
    assert codec.encode(e) == REFERENCE.encode(codec.to_dict(e))


def test_nan_is_refused_at_construction_and_at_encoding():
    with pytest.raises(EventError, match="t must be a number"):
        ev.HostCrashed(t=float("nan"), host="h")
    d = ev.Deferred(t=1.0, host="h", msg="m", trace="t", rcpt="a@b", code=451, text="x",
                    next_attempt=float("inf"))
    with pytest.raises(EventError, match="deferred: cannot encode"):
        codec.encode(d)


@pytest.mark.parametrize("line, why", [
    ('{"kind": "queued", "t": 1', "malformed JSON: .*column"),
    ('[1, 2]', "not a JSON object"),
    ('{"kind": "no_such_kind", "t": 1, "host": "h"}', "invalid event: unknown event kind"),
    ('{"t": 1, "host": "h"}', "invalid event: unknown event kind None"),
    ('{"kind": "host_crashed", "t": 1, "host": "h", "extra": 1}',
     r"invalid event: host_crashed: unknown fields \['extra'\]"),
    ('{"kind": "link_up", "t": 1, "host": "h"}',
     r"invalid event: link_up: missing fields \['link'\]"),
    ('{"kind": "released", "t": 1, "host": "h", "domain": "d", "trigger": "cron", "count": 1}',
     "invalid event: released: trigger must be one of etrn, finger, probe, got 'cron'"),
])
def test_decoding_names_what_is_wrong(line, why):
    with pytest.raises(EventError, match=why):
        codec.decode(line)
