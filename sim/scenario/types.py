"""Field types shared by the scenario models.

Each is an ``Annotated`` type: it parses the friendly text form (see
:mod:`mta.units` and :mod:`sim.scenario.quantities`), validates it, and
publishes a JSON Schema that editors can use for completion and checking.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Union

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, WithJsonSchema,
                      model_validator)

from mta import units
from sim.scenario import quantities as q


class Strict(BaseModel):
    """Base of every scenario model: unknown keys are errors, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _number_or_pattern(pattern: str, description: str, minimum: float = 0) -> dict:
    return {
        "anyOf": [
            {"type": "number", "minimum": minimum},
            {"type": "string", "pattern": pattern},
        ],
        "description": description,
    }


Duration = Annotated[
    float,
    BeforeValidator(units.parse_duration),
    WithJsonSchema(_number_or_pattern(
        units.DURATION_PATTERN + r"|^\d+(\.\d+)?$",
        "Seconds, or text such as 90m, 2d, 36h, 2d4h, 1.5s, 250ms")),
]

Size = Annotated[
    int,
    BeforeValidator(q.parse_size),
    WithJsonSchema(_number_or_pattern(
        r"^\d+(\.\d+)?\s*([KMG]i?B|B)?$", "Bytes, or text such as 30MB, 64KiB")),
]

Bandwidth = Annotated[
    float,
    BeforeValidator(q.parse_bandwidth),
    WithJsonSchema(_number_or_pattern(
        r"^\d+(\.\d+)?\s*([kKmMgG]?bit)?$",
        "Bytes per second, or bits per second as text such as 56kbit, 2Mbit")),
]

Rate = Annotated[
    float,
    BeforeValidator(q.parse_rate),
    WithJsonSchema(_number_or_pattern(
        r"^\d+(\.\d+)?\s*/\s*.+$", "Events per second, or text such as 10/h, 3/5m")),
]


def _ipv4(value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except (ipaddress.AddressValueError, ValueError):
        raise ValueError(f"expected an IPv4 address such as 192.0.2.10, got {value!r}") from None


def _network(value: str) -> str:
    try:
        return str(ipaddress.IPv4Network(value, strict=False))
    except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError):
        raise ValueError(
            f"expected an IPv4 address or network such as 192.0.2.0/24, got {value!r}") from None


_LABEL = r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*\.?$")


def _hostname(value: str) -> str:
    if not _HOSTNAME.match(value) or len(value) > 253:
        raise ValueError(f"expected a host or domain name such as mx1.example.net, got {value!r}")
    return value.rstrip(".").lower()


def _address(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if not at or not local or not _HOSTNAME.match(domain):
        raise ValueError(f"expected a mail address such as alice@example.net, got {value!r}")
    return f"{local}@{domain.rstrip('.').lower()}"


IPv4 = Annotated[str, AfterValidator(_ipv4),
                 WithJsonSchema({"type": "string", "format": "ipv4"})]
Network = Annotated[str, AfterValidator(_network),
                    WithJsonSchema({"type": "string", "description": "IPv4 address or CIDR"})]
HostName = Annotated[str, AfterValidator(_hostname),
                     WithJsonSchema({"type": "string", "format": "hostname"})]
DomainName = HostName
MailAddress = Annotated[str, AfterValidator(_address),
                        WithJsonSchema({"type": "string", "description": "local@domain"})]


def _one_or_many(value: object) -> object:
    """Let authors write a single item where a list is expected."""
    return [value] if isinstance(value, (str, int, float)) else value


def one_or_many(item: Any) -> Any:
    """``list[item]`` that also accepts a single ``item`` (``to: a@b.example``)."""
    return Annotated[list[item], BeforeValidator(_one_or_many,
                                                 json_schema_input_type=Union[item, list[item]])]


def shorthand(func: Any, *forms: Any) -> BeforeValidator:
    """A before-validator expanding a short form; ``forms`` are the extra
    input types it accepts, published in the JSON Schema."""
    return BeforeValidator(func, json_schema_input_type=Union[forms])  # type: ignore[arg-type]


def _document_for(schema: dict) -> None:
    schema["properties"]["for"] = dict(schema["properties"]["end"], title="For",
                                       description="length of the window (instead of end)")
    schema["required"] = ["start"]


class Window(Strict):
    """A span of simulated time: ``start`` to ``end``, or ``start`` and ``for``."""

    model_config = ConfigDict(json_schema_extra=_document_for)

    start: Duration
    end: Duration

    @model_validator(mode="before")
    @classmethod
    def _for_means_length(cls, data: object) -> object:
        if isinstance(data, dict) and "for" in data and "end" not in data:
            data = dict(data)
            length = data.pop("for")
            try:
                data["end"] = units.parse_duration(data.get("start", 0)) + units.parse_duration(length)
            except ValueError:
                data["end"] = length  # let the field validator report it
        return data

    @model_validator(mode="after")
    def _ordered(self) -> "Window":
        if self.end <= self.start:
            raise ValueError(
                f"expected end after start, got start {units.format_duration(self.start)}"
                f" and end {units.format_duration(self.end)}")
        return self
