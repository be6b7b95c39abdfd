"""Typed check parameters, and their problems in plain words.

Each check declares its parameters as a :class:`Params` model (pydantic,
unknown keys forbidden, every default stated on its field), in the module
of this package named like the check's (``params/mx.py`` for ``mx.py``),
with the causes its counterexamples name: validating a scenario reads
those and never loads the checks.  The field types here say what a value
may be:

* :data:`Duration`: seconds, or text such as ``90m``, ``36h``, ``2d4h``,
  ``1w``: the one duration grammar (:mod:`mta.units`);
* :data:`Host`, :data:`Hosts`: host names; when the scenario's hosts are
  known (the loader validates with them), a name outside them is an error;
* :data:`Texts`: a list of strings (one string means a list of one);
* :data:`Number`, :data:`Count`: a number of seconds or bytes, a whole count.

:func:`problems` turns a validation failure into ``(key path, message)``
pairs in plain words, with a "did you mean" for a misspelt key.
"""
from __future__ import annotations

import difflib
import importlib
import types
import typing
from typing import Annotated, Any, Iterable, Union

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError,
                      ValidationInfo)

from mta.units import parse_duration


class Params(BaseModel):
    """The parameters of one check: unknown keys are an error."""

    # Defaults go through the same parsing as given values ("5d" -> 432000.0).
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class NoParams(Params):
    """A check that takes no parameters."""


def declaration(module: str, gid: str) -> tuple[type[Params], tuple[tuple[str, str], ...]]:
    """The parameter model of check ``gid`` and the causes (name, meaning) it
    names, as the parameter module ``module`` (named like the check's)
    declares them: what the check registers and what validation reads."""
    declared = importlib.import_module(f"{__name__}.{module}")
    return (declared.PARAMS.get(gid, NoParams), tuple(declared.CAUSES.get(gid, {}).items()))


def _duration(value: object) -> float:
    return parse_duration(value)    # its ValueError says what was expected


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _count(value: object) -> int:
    return int(_number(value))


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expected a list, got {value!r}")
    return [str(x) for x in value]


def _known_host(value: str, info: ValidationInfo) -> str:
    hosts = (info.context or {}).get("hosts")
    if hosts is not None and value not in hosts:
        known = ", ".join(sorted(hosts)) or "none"
        raise ValueError(f"{value!r} is not a host of this scenario (its hosts: {known})")
    return value


def _known_hosts(value: list[str], info: ValidationInfo) -> list[str]:
    for name in value:
        _known_host(name, info)
    return value


Duration = Annotated[float, BeforeValidator(_duration)]
Number = Annotated[float, BeforeValidator(_number)]
Count = Annotated[int, BeforeValidator(_count)]
Text = Annotated[str, BeforeValidator(_text)]
Texts = Annotated[list[str], BeforeValidator(_texts)]
Host = Annotated[str, BeforeValidator(_text), AfterValidator(_known_host)]
Hosts = Annotated[list[str], BeforeValidator(_texts), AfterValidator(_known_hosts)]


def parse(model: type[Params], params: dict[str, Any] | None,
          hosts: Iterable[str] | None = None) -> Params:
    """Validate ``params`` into ``model``; host names are checked against
    ``hosts`` when given.  Raises :class:`pydantic.ValidationError`."""
    context = {"hosts": None if hosts is None else set(hosts)}
    return model.model_validate(dict(params or {}), context=context)


# -- problems in plain words -----------------------------------------------------

def problems(model: type[Params], exc: ValidationError) -> list[tuple[str, str]]:
    """``(key path, message)`` for each error; key paths like ``per_host.mx1.lifetime``
    (``""``: the parameters as a whole)."""
    out = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"] if p != "[key]"]
        out.append((_path(err["loc"]), _message(model, loc, err)))
    return out


def _path(loc: tuple) -> str:
    path = ""
    for part in loc:
        if part == "[key]":
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _message(model: type[Params], loc: list[str], err: dict) -> str:
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        known = sorted(_model_at(model, loc[:-1]).model_fields)
        close = difflib.get_close_matches(loc[-1], known, n=1)
        if close:
            return f"unknown key; did you mean {close[0]!r}?"
        return ("unknown key; this check takes no parameters" if not known
                else f"unknown key; the keys are {', '.join(known)}")
    if kind == "missing":
        return "required, but not given"
    if kind == "value_error":
        return str(err["ctx"]["error"])
    if kind == "literal_error":
        return f"expected {err['ctx']['expected']}, got {value!r}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping, got {value!r}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {value!r}"
    return f"not a valid value: {value!r}"


def _model_at(model: type[Params], loc: list[str]) -> type[Params]:
    """The parameter model that holds the key at ``loc`` (for "did you mean")."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel) \
                and part in current.model_fields:
            current = current.model_fields[part].annotation
        current = _inner_model(current)
    return current if isinstance(current, type) and issubclass(current, Params) else model


def _inner_model(annotation: Any) -> Any:
    """The model inside ``Model | None``, ``dict[str, Model]``, ``Annotated[...]``."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _inner_model(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                return _inner_model(arg)
    if origin is dict:
        return _inner_model(typing.get_args(annotation)[1])
    return annotation
