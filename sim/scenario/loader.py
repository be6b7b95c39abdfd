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
from typing import Any, Callable

import yaml
from pydantic import BaseModel, ValidationError

from sim.scenario import lint
from sim.scenario.schema import Scenario, cross_reference_problems
from sim.scenario.zonetext import parse_zones

#: ``(guarantee, params, host names) -> [(key path within params, message)]``:
#: the evidence layer's check-parameter validation, handed in by the caller
#: (the loader sits before the judge in the pipeline and never imports it).
ParamValidator = Callable[[str, dict, list[str]], list[tuple[tuple, str]]]
#: (guarantee, because) -> what is wrong, or None
CauseValidator = Callable[[str, str], "str | None"]


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


def load_scenario(path: str | Path, *, warnings: list[Problem] | None = None,
                  check_params: ParamValidator | None = None,
                  check_because: CauseValidator | None = None) -> Scenario:
    """Read and validate one scenario file.

    Raises :class:`ScenarioError` listing every error.  Findings that do
    not stop the run (:mod:`sim.scenario.lint` warnings) are appended to
    ``warnings`` when a list is given.  ``check_params`` validates each
    expectation's ``params`` for its check, ``check_because`` its
    ``because`` cause.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([Problem(str(path), "", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([Problem(str(path), "", f"cannot read: {exc}")]) from None
    return load_text(text, str(path), warnings=warnings, check_params=check_params,
                     check_because=check_because)


def load_text(text: str, filename: str = "<scenario>", *,
              warnings: list[Problem] | None = None,
              check_params: ParamValidator | None = None,
              check_because: CauseValidator | None = None) -> Scenario:
    """Validate scenario ``text``; ``filename`` is used in messages (see
    :func:`load_scenario` for ``warnings``, ``check_params`` and
    ``check_because``)."""
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
    zones = None
    if sc.dns is not None:
        zones, found = parse_zones(sc.dns.zones)
        problems += [_in_zones(filename, msg, n, data, root, text) for msg, n in found]
    if check_params is not None:
        hosts = [h.name for h in sc.hosts]
        for i, e in enumerate(sc.expectations):
            for key, msg in check_params(e.guarantee, dict(e.params), hosts):
                problems.append(_located(filename, ("expectations", i, "params") + tuple(key),
                                         msg, data, root))
    if check_because is not None:
        for i, e in enumerate(sc.expectations):
            msg = check_because(e.guarantee, e.because) if e.because is not None else None
            if msg:
                problems.append(_located(filename, ("expectations", i, "because"), msg,
                                         data, root))
    if problems:
        raise ScenarioError(problems)
    notes = lint.findings(sc, zones)
    errors = [_finding(filename, f, data, root, text) for f in notes if f.severity == lint.ERROR]
    if errors:
        raise ScenarioError(errors)
    if warnings is not None:
        warnings += [_finding(filename, f, data, root, text)
                     for f in notes if f.severity == lint.WARNING]
    return sc


def _finding(filename: str, f: lint.Finding, data: Any, root: yaml.Node | None,
             text: str) -> Problem:
    if f.text_line is not None:
        return _in_zones(filename, f.message, f.text_line, data, root, text)
    return _located(filename, f.loc, f.message, data, root)


def _in_zones(filename: str, message: str, text_line: int | None, data: Any,
              root: yaml.Node | None, text: str) -> Problem:
    """A problem at ``text_line`` of the zone text, placed at its line in
    the file when the zones are a block scalar (``zones: |``)."""
    loc = ("dns", "zones")
    node = _node_at(root, loc)
    if text_line is None or not isinstance(node, yaml.ScalarNode) or node.style not in "|>" \
            or not node.style:
        return _located(filename, loc, message, data, root)
    line = node.start_mark.line + 1 + text_line      # the block starts after its "|" line
    source = text.splitlines()[line - 1] if line - 1 < len(text.splitlines()) else ""
    column = len(source) - len(source.lstrip()) + 1
    return Problem(filename, format_path(loc), message, line, column)


def role_problems(sc: Scenario) -> list[tuple[tuple, str]]:
    """Role settings the mail components themselves refuse (mta/roles.py
    checks what can work, e.g. a mailbox outside the server's domains)."""
    from mta.roles import RoleError
    from sim.convert import Unsupported, check_supported, role_config

    out = []
    for i, role in enumerate(sc.roles):
        try:
            check_supported(role, f"roles[{i}]")
        except Unsupported as exc:
            key, _, why = str(exc).partition(": ")
            out.append((("roles", i, key.rpartition(".")[2]), why))
            continue
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
        choices = re.findall(r"'([^']*)'", expected)
        if len(choices) > _MAX_LISTED:
            # A long list on one line helps nobody: name where the values are.
            where = ("a guarantee ID of docs/catalogue.md" if loc and loc[-1] == "guarantee"
                     else f"one of {len(choices)} values (mxsim schema lists them)")
            message = f"expected {where}, got {given!r}" + _did_you_mean(given, expected)
        else:
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
        message = _PLAIN.get(kind, lambda c: "")(ctx) or err["msg"][0].lower() + err["msg"][1:]
        if given is not None and not isinstance(given, (dict, list)):
            message += f", got {given!r}"
    return _located(filename, loc, message, data, root)


#: pydantic's error types in the words of the rest of mxsim's messages.
_PLAIN = {
    "int_parsing": lambda c: "expected a whole number",
    "int_type": lambda c: "expected a whole number",
    "int_from_float": lambda c: "expected a whole number",
    "float_parsing": lambda c: "expected a number",
    "float_type": lambda c: "expected a number",
    "bool_parsing": lambda c: "expected true or false",
    "bool_type": lambda c: "expected true or false",
    "string_type": lambda c: "expected text",
    "list_type": lambda c: "expected a list",
    "dict_type": lambda c: "expected a mapping of keys",
    "model_type": lambda c: "expected a mapping of keys",
    "model_attributes_type": lambda c: "expected a mapping of keys",
    "greater_than_equal": lambda c: f"expected at least {c.get('ge')}",
    "greater_than": lambda c: f"expected more than {c.get('gt')}",
    "less_than_equal": lambda c: f"expected at most {c.get('le')}",
    "less_than": lambda c: f"expected less than {c.get('lt')}",
    "too_short": lambda c: f"expected at least {c.get('min_length')} item"
                           f"{'s' if c.get('min_length') != 1 else ''}",
    "too_long": lambda c: f"expected at most {c.get('max_length')} items",
    "string_pattern_mismatch": lambda c: f"expected text matching {c.get('pattern')}",
}


#: Allowed values listed in a message; above this, the message says where they are.
_MAX_LISTED = 8


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
