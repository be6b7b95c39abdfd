"""Traffic actors: who sends mail, spam and probes, and who dials in.

``kind`` selects the actor::

    sender           a legitimate sending MTA with a real queue and retry preset
    spammer          aims at the lowest-priority MX, never retries, probes relays
    dialup-customer  on each link-up: ETRN to each exchanger, a finger query,
                     or nothing (waits for the exchangers' probes)
    roaming-customer a customer's mail client away from home: checks POP3
                     (POP-before-SMTP), then sends through the provider's
                     relay, with SMTP AUTH, over an ordered list of ports
    pop3-reader      a client reading (and deleting) its mail on a POP3 server
    list-abuser      a roaming customer who mails hundreds of recipients at
                     once and resends the refused ones in batches
    large-sender     a roaming customer whose messages are over the relay's
                     size limit (31 MiB), declared with SIZE= or not
    compromised-account  a roaming customer whose password is stolen: its
                     usual rate, then a sudden burst through the same AUTH

Every random draw (arrival times, sizes, recipient counts, addresses) comes
from the run's seed.
"""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from sim.scenario.roles import RetrySetting, Retry
from sim.scenario.types import (DomainName, Duration, HostName, MailAddress, one_or_many, Rate,
                                Size, Strict, shorthand)


class FixedSize(Strict):
    dist: Literal["fixed"]
    value: Size


class UniformSize(Strict):
    dist: Literal["uniform"]
    min: Size
    max: Size

    @model_validator(mode="after")
    def _ordered(self) -> "UniformSize":
        if self.max < self.min:
            raise ValueError("expected max at least min")
        return self


class LognormalSize(Strict):
    """Heavy-tailed message sizes: median and shape, capped at ``max``."""

    dist: Literal["lognormal"]
    median: Size
    sigma: float = Field(default=1.0, gt=0)
    max: Size | None = None


def _fixed_shorthand(value: object) -> object:
    """``size: 4KB`` or ``recipients: 3`` means a fixed value."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return {"dist": "fixed", "value": value}
    return value


SizeDist = Annotated[Union[FixedSize, UniformSize, LognormalSize], Field(discriminator="dist"),
                     shorthand(_fixed_shorthand, Size, FixedSize, UniformSize, LognormalSize)]


class FixedCount(Strict):
    dist: Literal["fixed"]
    value: int = Field(ge=1)


class UniformCount(Strict):
    dist: Literal["uniform"]
    min: int = Field(ge=1)
    max: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> "UniformCount":
        if self.max < self.min:
            raise ValueError("expected max at least min")
        return self


class ChoiceCount(Strict):
    """One of ``values``, with optional ``weights`` (same length)."""

    dist: Literal["choice"]
    values: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)
    weights: list[Annotated[float, Field(ge=0)]] | None = None

    @model_validator(mode="after")
    def _same_length(self) -> "ChoiceCount":
        if self.weights is not None and len(self.weights) != len(self.values):
            raise ValueError(f"expected {len(self.values)} weights, one per value, "
                             f"got {len(self.weights)}")
        return self


CountDist = Annotated[Union[FixedCount, UniformCount, ChoiceCount], Field(discriminator="dist"),
                      shorthand(_fixed_shorthand, int, FixedCount, UniformCount, ChoiceCount)]


CONTENT_KINDS = ("ham", "spam_low", "spam_med", "spam_high", "gtube", "eicar", "large")


class Content(Strict):
    """What the messages of a sender or spammer contain, drawn per message
    from the run's seed with these relative weights (sim/actors/generate.py):

    ``ham`` plain text that hits no spam rule; ``spam_low``/``spam_med``/
    ``spam_high`` text that hits the built-in rules (mta/filters/spam.py)
    for 3.0 / 5.5 / 10.0 points, the levels' thresholds; ``gtube`` the GTUBE
    test string (1000 points); ``eicar`` an EICAR test-virus attachment
    (base64, or zipped, half each); ``large`` a clean base64 attachment of
    ``large_size``.  Without ``content`` every message is ham (the default).
    """

    ham: float = Field(default=1.0, ge=0)
    spam_low: float = Field(default=0.0, ge=0)
    spam_med: float = Field(default=0.0, ge=0)
    spam_high: float = Field(default=0.0, ge=0)
    gtube: float = Field(default=0.0, ge=0)
    eicar: float = Field(default=0.0, ge=0)
    large: float = Field(default=0.0, ge=0)
    large_size: Size = 1_000_000

    @model_validator(mode="after")
    def _something(self) -> "Content":
        if not any(getattr(self, k) for k in CONTENT_KINDS):
            raise ValueError(f"expected a weight above zero for one of {', '.join(CONTENT_KINDS)}")
        return self

    def weights(self) -> list[float]:
        return [getattr(self, k) for k in CONTENT_KINDS]


class ActorBase(Strict):
    """Fields every actor has: the host it runs on and when it is active."""

    host: HostName
    start: Duration = 0.0
    stop: Duration | None = Field(default=None, description="default: the scenario's end")

    def host_references(self) -> list[tuple[tuple, str]]:
        return []


class Sending(ActorBase):
    """Message generation shared by senders and spammers."""

    rate: Rate
    arrivals: Literal["poisson", "fixed"] = "poisson"
    daily_pattern: list[Annotated[float, Field(ge=0)]] | None = Field(
        default=None, min_length=24, max_length=24,
        description="24 relative weights, one per hour of the simulated day")
    count: int | None = Field(default=None, ge=0, description="stop after this many messages")
    size: SizeDist = FixedSize(dist="fixed", value=4000)
    recipients: CountDist = FixedCount(dist="fixed", value=1)
    from_: one_or_many(MailAddress) = Field(alias="from", min_length=1)
    to: one_or_many(MailAddress) = Field(min_length=1)
    content: Content | None = None

    @model_validator(mode="after")
    def _pattern_not_all_zero(self) -> "Sending":
        if self.daily_pattern is not None and not any(self.daily_pattern):
            raise ValueError("expected a daily_pattern with at least one hour above zero")
        return self


class Sender(Sending):
    """A legitimate sending MTA: real queue, retry preset, MX fallback.

    ``mta`` names the retry preset (postfix, exim, sendmail, rfc5321);
    ``retry`` overrides it in full.  ``smart_host`` hands all mail to that
    host instead of looking up MX records.
    """

    kind: Literal["sender"]
    retry: RetrySetting = Retry()
    smart_host: HostName | None = None

    def host_references(self) -> list[tuple[tuple, str]]:
        return [(("smart_host",), self.smart_host)] if self.smart_host else []


class RelayProbe(Strict):
    """Open-relay probing with the 16 address forms of nmap's
    ``smtp-open-relay`` script, against each host in ``targets``."""

    targets: one_or_many(HostName) = Field(min_length=1)
    at: Duration = 60.0
    every: Duration | None = None
    domain: DomainName = "nmap.scanme.org"
    ports: one_or_many(int) = [25]


class Spammer(ActorBase):
    """Sends straight to the lowest-priority MX of each recipient's domain
    (``target: lowest-mx``), to the MX hosts in order (``mx``), or to a named
    host; never retries after a 4xx; optionally probes for open relays."""

    kind: Literal["spammer"]
    rate: Rate = 0.0
    arrivals: Literal["poisson", "fixed"] = "poisson"
    count: int | None = Field(default=None, ge=0)
    size: SizeDist = FixedSize(dist="fixed", value=2000)
    recipients: CountDist = FixedCount(dist="fixed", value=1)
    from_: one_or_many(MailAddress) = Field(default=[], alias="from")
    to: one_or_many(MailAddress) = []
    target: Literal["lowest-mx", "mx"] | HostName = "lowest-mx"
    relay_probe: RelayProbe | None = None
    content: Content | None = None

    @model_validator(mode="after")
    def _something_to_do(self) -> "Spammer":
        if self.rate > 0 and (not self.from_ or not self.to):
            raise ValueError("expected 'from' and 'to' addresses for a spammer with a rate")
        if self.rate == 0 and self.relay_probe is None:
            raise ValueError("expected a 'rate' or a 'relay_probe' (the spammer does nothing)")
        return self

    def host_references(self) -> list[tuple[tuple, str]]:
        refs = []
        if self.target not in ("lowest-mx", "mx"):
            refs.append((("target",), self.target))
        if self.relay_probe:
            refs += [(("relay_probe", "targets", i), t)
                     for i, t in enumerate(self.relay_probe.targets)]
        return refs


class DialupCustomer(ActorBase):
    """A dial-up customer's delivery server; its link schedule is its host's.

    On each link-up it does ``on_connect``: ``etrn`` sends ``ETRN`` for each
    domain to each exchanger (all MX hosts of the domain but itself, or the
    listed ``exchangers``), ``finger`` sends a finger query for each domain,
    ``wait`` does nothing and relies on the exchangers' probes.
    """

    kind: Literal["dialup-customer"]
    domains: one_or_many(DomainName) = Field(min_length=1)
    on_connect: Literal["etrn", "finger", "wait"] = "etrn"
    exchangers: one_or_many(HostName) | None = None
    etrn_form: Literal["#", "@", "plain"] = "#"
    delay: Duration = Field(default=5.0, description="wait after link-up before triggering")

    def host_references(self) -> list[tuple[tuple, str]]:
        return [(("exchangers", i), x) for i, x in enumerate(self.exchangers or [])]


class Login(Strict):
    """An account the mail client logs in with (POP3 or SMTP AUTH)."""

    user: str = Field(min_length=1)
    password: str
    mechanism: Literal["PLAIN", "LOGIN"] = "PLAIN"     # SMTP AUTH only


class PopCheck(Login):
    """Check mail (the seed's "check your account for new mail") on ``port``
    of the relay host: before every message (``every-message``, the
    client's "always check email before sending"), or only before the
    first (``once``), so later messages meet a grant that has closed."""

    port: int = Field(default=110, ge=1, le=65535)
    check: Literal["every-message", "once"] = "every-message"


class RoamingCustomer(Sending):
    """A customer's mail client on someone else's access network (seeds
    002/003): before each message it checks POP3 (``pop3``), then sends
    straight to ``relay`` (no queue: a mail client), trying ``ports`` in
    order and falling back to the next when a port times out, is refused,
    or turns out to be intercepted.  ``auth`` logs in with SMTP AUTH.  The
    client reads the banner as the seed's ``telnet`` test does: a banner
    without ``expect_banner`` (default: the relay's host name) means the
    access ISP redirected the port, and the log says so.  ``attachment``
    attaches a file of that name to every message."""

    kind: Literal["roaming-customer"]
    relay: HostName
    ports: one_or_many(Annotated[int, Field(ge=1, le=65535)]) = [25, 2525]
    pop3: PopCheck | None = None
    auth: Login | None = None
    expect_banner: str | None = None
    attachment: str | None = None
    timeout: Duration = Field(default=30.0, description="per connection attempt and reply")

    def host_references(self) -> list[tuple[tuple, str]]:
        return [(("relay",), self.relay)]


class ListAbuser(RoamingCustomer):
    """An account holder using the relay as a mailing-list server (seed 003:
    "a mailing list of hundreds"): every message goes to ``recipients``
    addresses at once (give ``to`` a ``{n}`` template).  Like a bulk mailer
    it goes on after a refused recipient, sends the message to those
    accepted, and offers the refused ones again in the next transaction on
    the same connection, for at most ``batches`` transactions."""

    kind: Literal["list-abuser"]
    recipients: CountDist = FixedCount(dist="fixed", value=200)
    batches: int = Field(default=20, ge=1, description="most transactions per message")


class LargeSender(RoamingCustomer):
    """A customer whose messages are over the relay's size limit (seed 003:
    "Max Message Size -> 30MB"; Exim's ``30M`` is 30 MiB): ``size``
    defaults to 31 MiB.  ``declare_size`` puts ``SIZE=`` on MAIL when the
    relay advertises SIZE (RFC 1870), as mail clients do, so the relay can
    refuse before the body is sent; ``false`` sends the body and meets the
    limit at the end of DATA."""

    kind: Literal["large-sender"]
    size: SizeDist = FixedSize(dist="fixed", value=31 * 1024 * 1024)
    declare_size: bool = True


class Burst(Strict):
    """From ``at``, for ``for``, messages at ``rate`` on top of the usual ones."""

    at: Duration
    for_: Duration = Field(alias="for", gt=0)
    rate: Rate


class CompromisedAccount(RoamingCustomer):
    """A customer whose password has been stolen (seed 003: "we notice
    compromised accounts before the users do"): messages at ``rate`` (the
    owner's habit), and from ``burst.at`` for ``burst.for`` also at
    ``burst.rate`` (the thief), through the same relay with the same AUTH,
    to ``burst_to`` (default: ``to``)."""

    kind: Literal["compromised-account"]
    burst: Burst
    burst_to: one_or_many(MailAddress) | None = None


class Pop3Reader(ActorBase):
    """A client reading its mailboxes on ``server`` over POP3 (seed 001's
    temporary POP3 mailboxes): every ``every`` from ``start`` to ``stop``,
    for each of ``users`` (mailbox address -> password), it logs in,
    retrieves and deletes every message and quits; each message read is a
    ``mail_retrieved`` event.  A login that fails is simply tried again
    next time (the mailboxes may not exist yet)."""

    kind: Literal["pop3-reader"]
    server: HostName
    users: dict[MailAddress, str] = Field(min_length=1)
    port: int = Field(default=110, ge=1, le=65535)
    every: Duration = Field(default=3600.0, gt=0)
    timeout: Duration = Field(default=30.0, description="per connection attempt and reply")

    def host_references(self) -> list[tuple[tuple, str]]:
        return [(("server",), self.server)]


Actor = Annotated[Union[Sender, Spammer, DialupCustomer, RoamingCustomer, ListAbuser,
                        LargeSender, CompromisedAccount, Pop3Reader],
                  Field(discriminator="kind")]
ACTOR_KINDS = ("sender", "spammer", "dialup-customer", "roaming-customer", "list-abuser",
               "large-sender", "compromised-account", "pop3-reader")
