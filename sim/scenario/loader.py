"""Reading scenario files, with errors people can act on.

:func:`load_scenario` returns a validated :class:`~sim.scenario.schema.Scenario`
or raises :class:`ScenarioError`, which carries one :class:`Problem` per
mistake: the file, the line and column where it is, the key path
(``hosts[2].link.schedule.every``) and what was expected.  No traceback ever
reaches the user; YAML syntax errors come with their line and column, and a
key given twice in one mapping is an error (YAML would silently keep the
last).
"""
from __future__ import annotations

import difflib
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sim.scenario.schema import Scenario, cross_reference_problems


@dataclass(frozen=True)
class Problem:
    """One mistake in one file."""

    file: str
    path: str          # key path, "" for the document itself
    message: str
    line: int | None = None    # 1-based
    column: int | None = None  # 1-based

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ScenarioError(Exception):
    """A scenario file is invalid; ``problems`` lists every mistake found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate one scenario file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([Problem(str(path), "", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([Problem(str(path), "", f"cannot read: {exc}")]) from None
    return load_text(text, str(path))


def load_text(text: str, filename: str = "<scenario>") -> Scenario:
    """Validate scenario ``text``; ``filename`` is used in messages."""
    try:
        root, data = _parse(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "invalid YAML"
        raise ScenarioError([Problem(filename, "", f"YAML syntax error: {what}",
                                     mark.line + 1 if mark else None,
                                     mark.column + 1 if mark else None)]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([Problem(filename, "", f"YAML error: {exc}")]) from None
    if not isinstance(data, dict):
        raise ScenarioError([Problem(filename, "", "expected a mapping of scenario keys "
                                     "(name, duration, hosts, ...), got "
                                     + ("an empty file" if data is None
                                        else type(data).__name__))])
    problems = _duplicate_keys(root, filename)
    if problems:
        raise ScenarioError(problems)
    try:
        sc = Scenario.model_validate(data, context={"references": False})
    except ValidationError as exc:
        raise ScenarioError([_problem(err, data, root, filename)
                             for err in exc.errors(include_url=False)]) from None
    refs = cross_reference_problems(sc)
    if refs:
        raise ScenarioError([_located(filename, loc, msg, data, root) for loc, msg in refs])
    problems = [_located(filename, loc, msg, data, root) for loc, msg in role_problems(sc)]
    if sc.dns is not None:
        message = zone_problem(sc.dns.zones)
        if message:
            problems.append(_located(filename, ("dns", "zones"), message, data, root))
    if problems:
        raise ScenarioError(problems)
    return sc


def role_problems(sc: Scenario) -> list[tuple[tuple, str]]:
    """Role settings the mail components themselves refuse (mta/roles.py
    checks what can work, e.g. a mailbox outside the server's domains)."""
    from mta.roles import RoleError
    from sim.convert import role_config

    out = []
    for i, role in enumerate(sc.roles):
        try:
            role_config(role)
        except (RoleError, ValueError) as exc:
            out.append((("roles", i), f"the {role.role} component refuses this: {exc}"))
    return out


# libyaml when present (much faster); both keep line and column marks.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the data, from one parse."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()
    return root, data


def zone_problem(text: str) -> str | None:
    """Why the zone text cannot be served, or None.  Parsed exactly as the
    simulated DNS will parse it (sim/world/dns.py, dnspython)."""
    from sim.world.dns import ZoneSet   # the simulated DNS owns the zone syntax

    try:
        zones = ZoneSet.from_text(text)
    except ValueError as exc:
        return f"expected valid zone-file text: {exc}"
    if not zones.origins:
        return "expected zone-file text with at least one $ORIGIN line"
    return None


# --------------------------------------------------------------------------
# Turning pydantic errors into problems
# --------------------------------------------------------------------------

def _problem(err: dict, data: Any, root: yaml.Node | None, filename: str) -> Problem:
    loc = _data_path(err["loc"], data)
    kind = err["type"]
    given = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "missing":
        message = "required key is missing"
        if err["loc"] and isinstance(err["loc"][-1], str):
            message = f"required key '{err['loc'][-1]}' is missing"
            loc = loc[:-1] if loc and loc[-1] == err["loc"][-1] else loc
    elif kind == "extra_forbidden":
        allowed = _allowed_keys(err["loc"][:-1])
        key = str(err["loc"][-1])
        message = "unknown key"
        close = difflib.get_close_matches(key, allowed, n=1)
        if close:
            message += f" (did you mean '{close[0]}'?)"
        if allowed:
            message += "; expected one of: " + ", ".join(allowed)
    elif kind == "literal_error":
        expected = str(ctx.get("expected", "one of the allowed values"))
        message = f"expected {expected}, got {given!r}" + _did_you_mean(given, expected)
    elif kind == "union_tag_invalid":
        expected = str(ctx.get("expected_tags"))
        message = (f"expected {ctx.get('discriminator', 'kind')} to be one of "
                   f"{expected}, got {ctx.get('tag')!r}" + _did_you_mean(ctx.get("tag"), expected))
    elif kind == "union_tag_not_found":
        message = f"required key {ctx.get('discriminator', 'kind')} is missing"
    elif kind in ("value_error", "assertion_error"):
        message = str(ctx.get("error") or err["msg"]).removeprefix("Value error, ")
    else:
        message = err["msg"][0].lower() + err["msg"][1:]
        if given is not None and not isinstance(given, (dict, list)):
            message += f", got {given!r}"
    return _located(filename, loc, message, data, root)


def _did_you_mean(given: object, expected: str) -> str:
    choices = re.findall(r"'([^']*)'", expected)
    close = difflib.get_close_matches(str(given), choices, n=1) if isinstance(given, str) else []
    return f" (did you mean '{close[0]}'?)" if close else ""


def _data_path(loc: tuple, data: Any) -> tuple:
    """The pydantic location with its internal steps (union tags, validator
    names) removed, so that it follows the document."""
    out: list = []
    node = data
    for step in loc:
        if isinstance(node, dict) and step in node:
            out.append(step)
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            out.append(step)
            node = node[step]
        elif isinstance(node, dict) and isinstance(step, str) and _is_key_like(step, node):
            out.append(step)  # a missing key: name it, then stop walking
            node = None
        # else: a tag or a validator name; skip it
    return tuple(out)


def _is_key_like(step: str, node: dict) -> bool:
    return step.isidentifier() and not any(
        isinstance(v, str) and v == step for v in node.values())


def format_path(loc: tuple) -> str:
    """``("hosts", 2, "link")`` -> ``hosts[2].link``."""
    text = ""
    for step in loc:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


def _located(filename: str, loc: tuple, message: str, data: Any,
             root: yaml.Node | None) -> Problem:
    node = _node_at(root, loc)
    line = node.start_mark.line + 1 if node is not None else None
    column = node.start_mark.column + 1 if node is not None else None
    return Problem(filename, format_path(loc), message, line, column)


def _node_at(root: yaml.Node | None, loc: tuple) -> yaml.Node | None:
    """The YAML node for ``loc`` (or its nearest ancestor), for line numbers."""
    node = root
    for step in loc:
        nxt = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(step):
                    nxt = value if step != loc[-1] or isinstance(value, yaml.Node) else key
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            if 0 <= step < len(node.value):
                nxt = node.value[step]
        if nxt is None:
            return node
        node = nxt
    return node


def _duplicate_keys(node: yaml.Node | None, filename: str, loc: tuple = ()) -> list[Problem]:
    out: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key)
            if name in seen:
                out.append(Problem(filename, format_path(loc + (name,)),
                                   "key given twice in the same mapping",
                                   key.start_mark.line + 1, key.start_mark.column + 1))
            seen.add(name)
            out += _duplicate_keys(value, filename, loc + (name,))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out += _duplicate_keys(item, filename, loc + (i,))
    return out


# --------------------------------------------------------------------------
# Which keys a model accepts (for "unknown key" messages)
# --------------------------------------------------------------------------

def _allowed_keys(loc: tuple) -> list[str]:
    """Keys accepted by the model at pydantic location ``loc``."""
    tp: Any = Scenario
    for step in loc:
        tp = _step(tp, step)
        if tp is None:
            return []
    model = _as_model(tp, None)
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _unwrap(tp: Any) -> list[Any]:
    """The concrete alternatives inside Annotated / Optional / Union."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        out = []
        for arg in typing.get_args(tp):
            out += _unwrap(arg)
        return out
    return [tp]


def _as_model(tp: Any, tag: Any) -> type[BaseModel] | None:
    models = [t for t in _unwrap(tp) if isinstance(t, type) and issubclass(t, BaseModel)]
    if tag is not None:
        for m in models:
            for field in m.model_fields.values():
                args = typing.get_args(field.annotation)
                if typing.get_origin(field.annotation) is typing.Literal and tag in args:
                    return m
    return models[0] if len(models) == 1 else None


def _step(tp: Any, step: Any) -> Any:
    for alt in _unwrap(tp):
        origin = typing.get_origin(alt)
        if isinstance(step, int) and origin is list:
            return typing.get_args(alt)[0]
        if isinstance(step, str) and origin is dict:
            return typing.get_args(alt)[1]
    model = _as_model(tp, None)
    if model is None:
        tagged = _as_model(tp, step)
        return tagged  # the step was a union tag: the tagged model
    for name, f in model.model_fields.items():
        if step in (name, f.alias):
            return f.annotation if not f.metadata else typing.Annotated[
                (f.annotation, *f.metadata)]
    return None
