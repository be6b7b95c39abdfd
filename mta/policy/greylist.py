"""Greylisting (RFC 6647) with postgrey's semantics, as a pure decision.

Everything here copies postgrey 1.37 (``schweikert/postgrey``, the script
``postgrey``; line numbers below are that file's) as Postfix runs it with
``check_policy_service``:

* **Triplet** ``lc "client_net/sender/recipient"`` (lines 396-399), with
  the client network /24 or /64 and the sender normalised: see
  :mod:`mta.policy.greylist_triplet`, which also holds the options.
* **Decision** (lines 403-478), in whole seconds (Perl's ``time``): a
  triplet whose record shows a past success (``last - first >= delay``)
  passes; otherwise ``first`` restarts when ``now - first > retry_window``;
  every attempt stores ``first,now``; the client is deferred while
  ``delay - (now - first) > 0``.  So a retry exactly ``delay`` (300 s)
  after the first attempt passes, one at 299 s does not, and a first retry
  exactly 2 days later still passes.
* **Auto-whitelist** (lines 374-393, 439-459): a triplet's first pass
  after greylisting counts for its client's full address, at most once an
  hour; a client counted ``auto_whitelist_clients`` (5) times passes
  without a triplet lookup.
* **Expiry**: :mod:`mta.policy.greylist_store` (postgrey's maintenance).
  postgrey purges once a night, so an entry can outlive ``max_age`` by up
  to a day there; here a record past its expiry is treated as absent at
  lookup, exactly at ``max_age``.
* **Reply**: postgrey answers ``DEFER_IF_PERMIT 4.2.0 Greylisted, see
  http://postgrey.schweikert.ch/help/%r.html`` (lines 462-477, 625-626),
  which Postfix turns into ``450 4.2.0 <rcpt>: Recipient address rejected:
  Greylisted, see ...`` (``smtpd_check.c`` check_table_result,
  ``access_map_defer_code`` 450).  The first pass of a delayed triplet
  prepends one ``X-Greylist`` header per message (lines 480-492).

:func:`decide` is the whole policy: facts and the stored records in, a
:class:`Verdict` (the :class:`Decision`, the record update, the note for
the event log) out.  :class:`GreylistStage` is the thin adapter that reads
and writes a store around it inside the policy chain.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

from mta.policy.chain import Stage
from mta.policy.decision import Decision, Facts, Note
from mta.policy.greylist_store import (ClientRecord, GreylistStore, StoreUpdate,
                                       TripletRecord, client_expired, triplet_expired)
from mta.policy.greylist_triplet import (DAY, DSN_PREFIX, HOUR, POSTGREY_TEXT, X_GREYLIST,
                                         GreylistConfig, Query, client_network,
                                         normalise_sender, query_for)

GREYLIST_CODE = 450            # Postfix DEF_MAP_DEFER_CODE (access_map_defer_code)
GREYLIST_STATUS = "4.2.0"      # postgrey line 469
#: Postfix ``smtpd_policy_service_default_action``: the reply when the
#: policy service (here: the store) fails.
STORE_FAILED = (451, "4.3.5", "Server configuration problem")


@dataclass(frozen=True)
class Verdict:
    """What greylisting decided for one RCPT.  ``action`` is postgrey's log
    action (``greylist`` or ``pass``), ``reason`` its log reason (``new``,
    ``early-retry``, ``triplet found``, ``client AWL``, ``client
    whitelist``, ``recipient whitelist``, ``no client address``).
    ``remaining``: seconds still to wait; ``waited``: how long a triplet
    that passes for the first time was delayed."""

    decision: Decision
    update: StoreUpdate
    action: str
    reason: str
    key: str
    remaining: int = 0
    waited: int | None = None
    awl_count: int | None = None

    @property
    def detail(self) -> str:
        """``key=value`` words, the triplet last (it may hold spaces)."""
        return _detail(self.reason, self.remaining, self.waited, self.awl_count, self.key)

    @property
    def note(self) -> Note:
        return Note(self.action, self.detail)


def _detail(reason: str, remaining: int, waited: int | None, awl_count: int | None,
            key: str) -> str:
    words = [f"reason={reason.replace(' ', '-')}", f"remaining={remaining}"]
    if waited is not None:
        words.append(f"delay={waited}")
    if awl_count is not None:
        words.append(f"awl={awl_count}")
    words.append(f"triplet={key}")
    return " ".join(words)


def _postfix_text(recipient: str, text: str) -> str:
    return f"<{recipient}>: Recipient address rejected: {text}"


def _greylist_reply(cfg: GreylistConfig, q: Query, diff: int) -> tuple[str, str]:
    """Enhanced code and text as postgrey formats and Postfix wraps them."""
    msg = cfg.greylist_text.replace("%s", str(diff), 1)
    msg = msg.replace("%r", q.recipient.rsplit("@", 1)[-1], 1)
    m = DSN_PREFIX.match(msg)
    if m:                       # postfix dsn_split: the text brings its own code
        return msg[:m.end()].strip(), _postfix_text(q.recipient, msg[m.end():])
    if msg[:1].isdigit():       # postgrey adds no 4.2.0; Postfix's default is 4.7.1
        return "4.7.1", _postfix_text(q.recipient, msg)
    return GREYLIST_STATUS, _postfix_text(q.recipient, msg)


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _header_date(now: int) -> str:
    # postgrey: strftime("%a, %d %b %Y %T %Z") in the C locale; UTC here so
    # the text depends on nothing but the clock.
    t = time.gmtime(now)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} UTC")


def _verdict(stage: str, update: StoreUpdate, action: str, reason: str, key: str, *,
             remaining: int = 0, waited: int | None = None, awl_count: int | None = None,
             reply: tuple[str, str] | None = None,
             headers: tuple[tuple[str, str], ...] = ()) -> Verdict:
    note = Note(action, _detail(reason, remaining, waited, awl_count, key))
    if reply is not None:
        d = Decision.defer(stage, GREYLIST_CODE, reply[0], reply[1], notes=(note,))
    else:
        d = Decision.accept(stage, notes=(note,), headers=headers)
    return Verdict(d, update, action, reason, key, remaining, waited, awl_count)


def decide(cfg: GreylistConfig, q: Query, record: TripletRecord | None,
           client: ClientRecord | None, *, hostname: str = "localhost",
           stage: str = "greylist") -> Verdict:
    """postgrey ``smtpd_access_policy`` (lines 324-496) as a pure function.

    ``record`` and ``client`` are what the store holds for ``q.key`` and
    ``q.client`` (None: nothing).  Expired records count as absent.
    """
    now = q.now
    nothing = StoreUpdate()
    if not q.key:
        return _verdict(stage, nothing, "pass", "no client address", "")
    if cfg.whitelist_clients and q.client in cfg._clients:        # type: ignore[attr-defined]
        return _verdict(stage, nothing, "pass", "client whitelist", q.key)
    if any(p.search(q.recipient) for p in cfg._rcpt_patterns):  # type: ignore[attr-defined]
        return _verdict(stage, nothing, "pass", "recipient whitelist", q.key)

    awl = cfg.auto_whitelist_clients
    if client is not None and client_expired(client, now, max_age=cfg.max_age):
        client = None
    if awl and client is not None and client.count >= awl:
        upd = nothing
        count = client.count
        if now >= client.last + HOUR or client.last > now:
            count += 1                                  # "for statistics"
            upd = StoreUpdate(client=q.client, client_record=ClientRecord(count, now))
        return _verdict(stage, upd, "pass", "client AWL", q.key, awl_count=count)

    if record is not None and triplet_expired(record, now, delay=cfg.delay,
                                              max_age=cfg.max_age,
                                              retry_window=cfg.retry_window):
        record = None
    last_was_successful = False
    if record is not None:
        first = record.first
        if record.last - record.first >= cfg.delay:
            last_was_successful = True
        elif now - first > cfg.retry_window:
            first = now                 # the first retry came too late: start over
        if first > now:
            first = now                 # "correcting date for first seen in the future"
    else:
        first = now
    diff = cfg.delay - (now - first)

    client_upd: ClientRecord | None = None
    if awl and diff <= 0 and not last_was_successful:
        if client is None or now >= client.last + HOUR:
            client_upd = ClientRecord((client.count if client else 0) + 1, now)
    update = StoreUpdate(key=q.key, triplet=TripletRecord(first, now),
                         client=q.client if client_upd else "", client_record=client_upd)
    awl_count = client_upd.count if client_upd else None

    if diff > 0:
        return _verdict(stage, update, "greylist", "early-retry" if now != first else "new",
                        q.key, remaining=diff, awl_count=awl_count,
                        reply=_greylist_reply(cfg, q, diff))

    headers: list[tuple[str, str]] = []
    waited = None if last_was_successful else now - first
    if waited is not None and q.header_due and cfg.x_greylist_header:
        value = (cfg.x_greylist_header.replace("%t", str(waited), 1)
                 .replace("%v", "mxsim", 1).replace("%d", _header_date(now), 1)
                 .replace("%h", hostname, 1))
        headers.append(("X-Greylist", value))
    return _verdict(stage, update, "pass", "triplet found", q.key, waited=waited,
                    awl_count=awl_count, headers=tuple(headers))


@dataclass
class GreylistStage(Stage):
    """The greylisting stage at RCPT: the store I/O around :func:`decide`.

    ``clock`` is the host's event clock (``HostContext.now``: virtual time
    simulated, Unix time live, so stored records outlive a restart).  The
    store is read and written synchronously (see
    :class:`~mta.policy.greylist_store.GreylistStore`); expired records
    are purged at most once per ``maintenance_interval`` (postgrey: hourly
    attempts).  A store that fails answers Postfix's policy-service
    default, ``451 4.3.5``, never a silent pass.
    """

    store: GreylistStore
    clock: Callable[[], float]
    config: GreylistConfig = field(default_factory=GreylistConfig)
    hostname: str = "localhost"
    name: str = "greylist"
    maintenance_interval: int = HOUR
    last_maintenance: int | None = None

    def on_rcpt(self, facts: Facts, rcpt) -> Decision | None:
        if facts.mail_from is None:      # the server enforces MAIL before RCPT
            return None
        cfg = self.config
        due = not any(name == "X-Greylist" for name, _ in facts.headers)
        q = query_for(cfg, facts.client_ip, facts.mail_from.mailbox, rcpt.mailbox,
                      self.clock(), header_due=due)
        try:                            # the I/O: read both records
            notes = self._maintain(q.now)
            record = self.store.triplet(q.key) if q.key else None
            client = (self.store.client(q.client)
                      if q.client and cfg.auto_whitelist_clients else None)
        except Exception as exc:        # a store error is any exception: tempfail, logged
            return self._store_failed(q, exc)
        v = decide(cfg, q, record, client, hostname=self.hostname, stage=self.name)
        try:                            # ... and write what the decision changed
            self.store.apply(v.update)
        except Exception as exc:
            return self._store_failed(q, exc)
        return replace(v.decision, notes=notes + v.decision.notes) if notes else v.decision

    def _store_failed(self, q: Query, exc: Exception) -> Decision:
        code, status, text = STORE_FAILED
        return Decision.defer(self.name, code, status, _postfix_text(q.recipient, text),
                              notes=(Note("store-error",
                                          f"{type(exc).__name__}: {exc} triplet={q.key}"),))

    def _maintain(self, now: int) -> tuple[Note, ...]:
        if self.last_maintenance is None:
            self.last_maintenance = now
            return ()
        if now - self.last_maintenance < self.maintenance_interval:
            return ()
        self.last_maintenance = now
        cfg = self.config
        t, c = self.store.purge(now, delay=cfg.delay, max_age=cfg.max_age,
                                retry_window=cfg.retry_window)
        if not (t or c):
            return ()
        return (Note("expired", f"triplets={t} clients={c}"),)


__all__ = ["GreylistConfig", "GreylistStage", "Query", "Verdict", "decide", "query_for",
           "normalise_sender", "client_network", "GREYLIST_CODE", "GREYLIST_STATUS",
           "POSTGREY_TEXT", "X_GREYLIST", "DAY", "HOUR"]
