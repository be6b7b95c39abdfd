"""Every private detail of aiosmtpd 1.4.6 the receiving server relies on.

aiosmtpd (pinned in pyproject.toml) is the base of the receiving server, but
its ``SMTP`` class offers no public hooks for what the server changes: the
command loop, the idle timer, the end of a transaction, the method tables.
This module is the only one that names an aiosmtpd attribute starting with
``_`` (tests/test_server_pins.py greps for others, and checks every detail
listed in :data:`PRIVATE_DETAILS`, failing with its name if an upgrade
moves it).  :class:`FencedSMTP` turns those details into public methods:

* ``_handle_client`` (aiosmtpd's command loop) runs :meth:`FencedSMTP.serve`;
* ``_set_post_data_state`` (a transaction ends: after DATA, RSET, HELO, a
  new connection) calls :meth:`FencedSMTP.on_transaction_reset`;
* ``_reset_timeout`` keeps one idle timer armed and moves its deadline
  (:meth:`FencedSMTP.restart_idle_timer`); ``_timeout_cb`` calls
  :meth:`FencedSMTP.on_idle_timeout` before aiosmtpd closes;
* ``_original_transport`` (STARTTLS's plain transport) is
  :meth:`~FencedSMTP.plain_transport`, ``_tls_protocol``
  :meth:`~FencedSMTP.tls_active`;
* ``_reader``/``_writer``, ``_smtp_methods``, ``_auth_methods``,
  ``_auth_require_tls``/``_tls_protocol``, ``_set_rset_state`` and
  ``_set_post_data_state`` are reached through :attr:`~FencedSMTP.reader`,
  :attr:`~FencedSMTP.writer`, :meth:`~FencedSMTP.command_method`,
  :meth:`~FencedSMTP.offered_auth`, :meth:`~FencedSMTP.reset_transaction`
  and :meth:`~FencedSMTP.end_transaction`;
* :func:`isolate_command_limits` keeps aiosmtpd's constructor off the
  class-level ``command_size_limits`` dict (shared by every server in the
  process) and sizes the line reader.

The constructor skips aiosmtpd's per-connection introspection: aiosmtpd
1.4.6 builds four lookup tables in ``SMTP.__init__``, that is on every
connection: AUTH mechanisms (``inspect.getmembers`` of the protocol and of
the handler), handler hooks (``dir(handler)``), the EHLO hook's calling
convention (``inspect.signature``) and SMTP commands (``dir(self)``).
Walking every attribute of both objects that way costs more than the rest
of the constructor and about 6-10% of a whole simulated session.  The
*names* in those tables depend only on the two classes, so the names are
found once per (protocol class, handler class) and then only bound with
``getattr`` for each new connection: the tables hold the same keys, in the
same order, with methods bound to the same instances as aiosmtpd's
(tests/test_server_fence.py compares them, and every other attribute, with
aiosmtpd's own constructor).  The names are cached only when they cannot
differ between instances: both classes use the default ``__dir__`` and
neither instance has an attribute of its own named ``auth_*``, ``handle_*``
or ``smtp_*``; anything else takes aiosmtpd's path every time.
"""
from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import operator
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Union
from warnings import warn

from aiosmtpd.smtp import (CALL_LIMIT_DEFAULT, DATA_SIZE_DEFAULT, SMTP, AuthCallbackType,
                           AuthenticatorType, _AuthMechAttr, __ident__, is_int,
                           login_always_fail, make_loop)

log = logging.getLogger("mail.log")   # aiosmtpd's logger, for the same AUTH line


def _not_login_data_warning(record: logging.LogRecord) -> bool:
    # aiosmtpd's own smtp_AUTH sets the deprecated Session.login_data on every
    # successful AUTH and warns about it each time: noise on every run's stderr.
    return not str(record.msg).startswith("Session.login_data is deprecated")


log.addFilter(_not_login_data_warning)

_PREFIXES = ("auth_", "handle_", "smtp_")

#: What this module relies on, as (aiosmtpd member, text its source must
#: contain): each is a behaviour of aiosmtpd 1.4.6 that FencedSMTP builds on.
#: tests/test_server_pins.py checks every entry and names the one that moved.
PRIVATE_DETAILS: tuple[tuple[str, str], ...] = (
    ("SMTP.__init__", "self.command_size_limits.clear()"),   # why isolate_command_limits
    ("SMTP.__init__", "limit=self.line_length_limit"),       # the reader's line limit
    ("SMTP.__init__", "self._smtp_methods"),
    ("SMTP.__init__", "self._auth_methods"),
    ("SMTP.__init__", "self._auth_require_tls"),
    ("SMTP.__init__", "self._tls_protocol"),
    ("SMTP.__init__", "self._timeout_duration = timeout"),
    ("SMTP.__init__", "self._timeout_handle: Optional[asyncio.TimerHandle] = None"),
    ("SMTP.connection_made", "self._set_rset_state()"),     # a new connection resets
    ("SMTP.connection_made", "self._reset_timeout()"),
    ("SMTP.connection_made", "self._handle_client()"),      # the command loop task
    ("SMTP.connection_lost", "self._timeout_handle.cancel()"),
    ("SMTP._set_rset_state", "self._set_post_data_state()"),  # RSET/HELO end a transaction
    ("SMTP._set_post_data_state", "self.envelope = self._create_envelope()"),
    ("SMTP._cb_client_connected", "self._reader = reader"),
    ("SMTP._cb_client_connected", "self._writer = writer"),
    ("SMTP._timeout_cb", "self.transport.close()"),
    ("SMTP.smtp_RSET", "self._set_rset_state()"),
    ("SMTP.smtp_AUTH", "self._auth_methods"),
    ("SMTP.smtp_AUTH", "self.session.authenticated = True"),
    # STARTTLS: the plain transport kept under the TLS layer, and the 334
    # exchange of AUTH PLAIN/LOGIN going through challenge_auth (overridden).
    ("SMTP.smtp_STARTTLS", "self._original_transport = self.transport"),
    ("SMTP.smtp_STARTTLS", "raise TLSSetupException() from error"),
    ("SMTP.auth_PLAIN", "await self.challenge_auth("),
    ("SMTP.auth_LOGIN", "await self.challenge_auth("),
)

# Cheap enough for import time (the source needles are the pin test's job):
# a renamed method would otherwise be silently never called.
for _name in ("_handle_client", "_reset_timeout", "_timeout_cb", "_set_post_data_state",
              "_set_rset_state", "_cb_client_connected"):
    if not callable(getattr(SMTP, _name, None)):  # pragma: no cover
        raise ImportError(f"aiosmtpd.smtp.SMTP.{_name} is gone: mta.smtp.aiosmtpd_fence overrides it")


def missing_details() -> list[str]:
    """The entries of :data:`PRIVATE_DETAILS` this aiosmtpd no longer has."""
    missing = []
    for where, needle in PRIVATE_DETAILS:
        member = getattr(SMTP, where.split(".", 1)[1], None)
        if member is None or needle not in inspect.getsource(member):
            missing.append(f"{where}: {needle}")
    if not isinstance(SMTP.__dict__.get("command_size_limits"), collections.defaultdict):
        missing.append("SMTP.command_size_limits: a class-level defaultdict")
    return missing


def isolate_command_limits(smtp: SMTP, command_size_limit: int, line_length_limit: int) -> None:
    """Give ``smtp`` its own command limits; call before ``SMTP.__init__``.

    aiosmtpd keeps ``command_size_limits`` on the class, shared by every
    server in the process, and its constructor clears it (and its EHLO grows
    MAIL's entry): an instance dict takes those writes instead.  The stream
    reader is built with ``line_length_limit``, which must fit the longest
    command accepted."""
    smtp.command_size_limit = command_size_limit
    smtp.command_size_limits = collections.defaultdict(lambda: command_size_limit)
    smtp.line_length_limit = line_length_limit


@dataclass(frozen=True)
class MethodNames:
    """The attribute names behind aiosmtpd's tables, in aiosmtpd's order."""

    auth: tuple[tuple[str, str, bool], ...]   # (mechanism, attribute, on the protocol)
    hooks: tuple[tuple[str, str], ...]        # (command, handler attribute)
    ehlo_hook_ver: str | None                 # None, "old" (4 arguments) or "new" (5)
    smtp: tuple[tuple[str, str], ...]         # (command, protocol attribute)


_CACHE: dict[tuple[type, type], MethodNames] = {}


def _ehlo_version(hook: Callable | None) -> str | None:
    """aiosmtpd's ``_ehlo_hook_ver`` for a bound ``handle_EHLO`` (or None)."""
    if hook is None:
        return None
    params = inspect.signature(hook).parameters
    if len(params) == 4:
        return "old"
    if len(params) == 5:
        return "new"
    raise RuntimeError("Unsupported EHLO Hook")


def find_names(smtp: SMTP, handler: Any) -> MethodNames:
    """The names exactly as aiosmtpd's constructor walks them (the slow path)."""
    auth = tuple(
        (getattr(mfunc, "__auth_mechanism_name__",
                 mname.replace("auth_", "").replace("__", "-")), mname, obj is smtp)
        for obj in (smtp, handler)
        for mname, mfunc in inspect.getmembers(obj)
        if mname.startswith("auth_"))
    hooks = tuple((m.replace("handle_", ""), m) for m in dir(handler) if m.startswith("handle_"))
    ehlo = dict(hooks).get("EHLO")   # the dict aiosmtpd builds: the last name wins
    smtp_names = tuple((m.replace("smtp_", ""), m) for m in dir(smtp) if m.startswith("smtp_"))
    return MethodNames(auth, hooks,
                       _ehlo_version(getattr(handler, ehlo) if ehlo else None), smtp_names)


_is_table_name = operator.methodcaller("startswith", _PREFIXES)
# Instance attribute names seen already and found not to be table names: a
# connection's ~50 attributes are the same names every time, and a subset
# test of the dict's keys is one C-level pass with no call per name.
_PLAIN_NAMES: set[str] = set()


def _own_names(obj: Any) -> bool:
    """Whether ``obj`` has an instance attribute that could be a table entry."""
    names = getattr(obj, "__dict__", {}).keys()
    if names <= _PLAIN_NAMES:
        return False
    if any(map(_is_table_name, names)):
        return True
    _PLAIN_NAMES.update(names)
    return False


def method_names(smtp: SMTP, handler: Any) -> MethodNames:
    """The table names for this pair, from the per-class cache when safe."""
    key = (type(smtp), type(handler))
    names = _CACHE.get(key)
    if names is not None and not (_own_names(smtp) or _own_names(handler)):
        return names
    names = find_names(smtp, handler)
    if (type(smtp).__dir__ is object.__dir__ and type(handler).__dir__ is object.__dir__
            and not (_own_names(smtp) or _own_names(handler))):
        _CACHE[key] = names
    return names


class FencedSMTP(SMTP):
    """``aiosmtpd.smtp.SMTP`` behind public methods, built without per-connection
    introspection (see the module docstring).

    The constructor is aiosmtpd 1.4.6's, statement for statement, except
    where it builds ``_auth_methods``, ``_handle_hooks``, ``_ehlo_hook_ver``
    and ``_smtp_methods`` (see the module docstring).  Same signature, same
    attributes, same warnings and log line.
    """

    def __init__(
            self,
            handler: Any,
            *,
            data_size_limit: Optional[int] = DATA_SIZE_DEFAULT,
            enable_SMTPUTF8: bool = False,
            decode_data: bool = False,
            hostname: Optional[str] = None,
            ident: Optional[str] = None,
            tls_context: Optional[ssl.SSLContext] = None,
            require_starttls: bool = False,
            timeout: float = 300,
            auth_required: bool = False,
            auth_require_tls: bool = True,
            auth_exclude_mechanism: Optional[Iterable[str]] = None,
            auth_callback: Optional[AuthCallbackType] = None,
            command_call_limit: Union[int, dict[str, int], None] = None,
            authenticator: Optional[AuthenticatorType] = None,
            proxy_protocol_timeout: Optional[Union[int, float]] = None,
            loop: Optional[asyncio.AbstractEventLoop] = None
    ):
        self.__ident__ = ident or __ident__
        self.loop = loop if loop else make_loop()
        # SMTP's parent, not SMTP: this method replaces SMTP.__init__.
        super(SMTP, self).__init__(
            asyncio.StreamReader(loop=self.loop, limit=self.line_length_limit),
            client_connected_cb=self._cb_client_connected,
            loop=self.loop)
        self.event_handler = handler
        assert data_size_limit is None or isinstance(data_size_limit, int)
        self.data_size_limit = data_size_limit
        self.enable_SMTPUTF8 = enable_SMTPUTF8
        self._decode_data = decode_data
        self.command_size_limits.clear()
        self.hostname = hostname if hostname else socket.getfqdn()
        self.tls_context = tls_context
        if tls_context:
            if (tls_context.verify_mode
                    not in {ssl.CERT_NONE, ssl.CERT_OPTIONAL}):  # noqa: DUO122
                log.warning("tls_context.verify_mode not in {CERT_NONE, "
                            "CERT_OPTIONAL}; this might cause client "
                            "connection problems")
            elif tls_context.check_hostname:
                log.warning("tls_context.check_hostname == True; "
                            "this might cause client connection problems")
        self.require_starttls = tls_context and require_starttls
        self._timeout_duration = timeout
        self._timeout_handle = None
        self._tls_handshake_okay = True
        self._tls_protocol = None
        self._original_transport = None
        self.session = None
        self.envelope = None
        self.transport = None
        self._handler_coroutine = None
        if not auth_require_tls and auth_required:
            warn("Requiring AUTH while not requiring TLS "
                 "can lead to security vulnerabilities!")
            log.warning("auth_required == True but auth_require_tls == False")
        self._auth_require_tls = auth_require_tls

        if proxy_protocol_timeout is not None:
            if proxy_protocol_timeout <= 0:
                raise ValueError("proxy_protocol_timeout must be > 0")
            elif proxy_protocol_timeout < 3.0:
                log.warning("proxy_protocol_timeout < 3.0")
        self._proxy_timeout = proxy_protocol_timeout

        if authenticator is not None:
            self._authenticator = authenticator
            self._auth_callback = None
        else:
            self._auth_callback = auth_callback or login_always_fail
            self._authenticator = None

        self._auth_required = auth_required

        # The tables: names once per class pair, bound here per instance.
        names = method_names(self, handler)
        self._auth_methods = {
            mech: _AuthMechAttr(getattr(self if own else handler, attr), own)
            for mech, attr, own in names.auth}
        for m in (auth_exclude_mechanism or []):
            self._auth_methods.pop(m, None)
        if log.isEnabledFor(logging.INFO):   # skip building the text nobody logs
            log.info(
                "Available AUTH mechanisms: "
                + " ".join(
                    m + "(builtin)" if impl.is_builtin else m
                    for m, impl in sorted(self._auth_methods.items())
                )
            )
        self._handle_hooks = {cmd: getattr(handler, attr) for cmd, attr in names.hooks}
        self._ehlo_hook_ver = names.ehlo_hook_ver
        if names.ehlo_hook_ver == "old":
            warn("Use the 5-argument handle_EHLO() hook instead of "
                 "the 4-argument handle_EHLO() hook; "
                 "support for the 4-argument handle_EHLO() hook will be "
                 "removed in version 2.0",
                 DeprecationWarning)
        self._smtp_methods = {cmd: getattr(self, attr) for cmd, attr in names.smtp}

        if command_call_limit is None:
            self._enforce_call_limit = False
        else:
            self._enforce_call_limit = True
            if isinstance(command_call_limit, int):
                self._call_limit_base = {}
                self._call_limit_default = command_call_limit
            elif isinstance(command_call_limit, dict):
                if not all(map(is_int, command_call_limit.values())):
                    raise TypeError("All command_call_limit values must be int")
                self._call_limit_base = command_call_limit
                self._call_limit_default = command_call_limit.get(
                    "*", CALL_LIMIT_DEFAULT
                )
            else:
                raise TypeError("command_call_limit must be int or Dict[str, int]")

    # -- the public face of aiosmtpd's privates ------------------------------
    # Set on the first restart_idle_timer (from connection_made), so the
    # constructor's attributes stay exactly aiosmtpd's.
    _idle_deadline = 0.0       # loop time the connection times out
    _idle_armed = 0.0          # loop time the armed timer fires

    @property
    def reader(self) -> asyncio.StreamReader:
        """The connection's stream reader (bytes from the client)."""
        return self._reader

    @property
    def writer(self) -> asyncio.StreamWriter:
        """The connection's stream writer."""
        return self._writer

    def command_method(self, verb: str) -> Callable[[str | None], Any] | None:
        """The bound ``smtp_<VERB>`` method, or None for an unknown verb."""
        return self._smtp_methods.get(verb)

    def plain_transport(self) -> Any:
        """The TCP transport under STARTTLS's TLS layer (None before STARTTLS)."""
        return self._original_transport

    def tls_active(self) -> bool:
        """STARTTLS has run on this connection (RFC 3207)."""
        return self._tls_protocol is not None

    def offered_auth(self) -> list[str]:
        """AUTH mechanisms to advertise now (none while TLS is required and absent)."""
        if self._auth_require_tls and not self._tls_protocol:
            return []
        return sorted(self._auth_methods)

    def reset_transaction(self) -> None:
        """Drop the mail transaction (envelope), keeping the greeting (RSET, HELO)."""
        self._set_rset_state()

    def end_transaction(self) -> None:
        """Start a new envelope after DATA's final reply."""
        self._set_post_data_state()

    async def serve(self) -> None:
        """The command loop of one connection (aiosmtpd's ``_handle_client``)."""
        await super()._handle_client()

    def on_transaction_reset(self) -> None:
        """Called whenever aiosmtpd starts a new envelope."""

    def on_idle_timeout(self) -> None:
        """Called when the idle timeout fires, before the connection closes."""

    def restart_idle_timer(self, duration: float | None = None) -> None:
        """Move the idle deadline ``duration`` (default: the idle timeout)
        from now.

        aiosmtpd cancels its timer and schedules a new one here, and this
        runs for every command and every DATA line (RFC 5321 §4.5.3.2: the
        timeout is per block).  Here one timer stays armed and only the
        deadline moves: when the timer fires before the deadline it re-arms
        for the rest, so the connection still times out exactly
        ``duration`` after the last activity."""
        loop = self.loop
        deadline = loop.time() + (duration or self._timeout_duration)
        self._idle_deadline = deadline
        handle = self._timeout_handle
        if handle is None or handle.cancelled() or deadline < self._idle_armed:
            if handle is not None:
                handle.cancel()
            self._idle_armed = deadline
            self._timeout_handle = loop.call_at(deadline, self._idle_check)

    def _idle_check(self) -> None:
        """The idle timer fired: time out, or re-arm if activity moved the deadline."""
        deadline = self._idle_deadline
        if self.loop.time() < deadline:
            self._idle_armed = deadline
            self._timeout_handle = self.loop.call_at(deadline, self._idle_check)
            return
        self._timeout_cb()

    # -- aiosmtpd's private methods, routed to the public ones above ----------
    async def _handle_client(self) -> None:
        await self.serve()

    def _set_post_data_state(self) -> None:
        super()._set_post_data_state()
        self.on_transaction_reset()

    def _reset_timeout(self, duration: float | None = None) -> None:
        self.restart_idle_timer(duration)

    def _timeout_cb(self) -> None:
        self.on_idle_timeout()
        super()._timeout_cb()
