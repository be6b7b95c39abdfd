"""aiosmtpd's ``SMTP.__init__`` without per-connection introspection.

aiosmtpd 1.4.6 builds four lookup tables in ``SMTP.__init__``, that is on
every connection: AUTH mechanisms (``inspect.getmembers`` of the protocol
and of the handler), handler hooks (``dir(handler)``), the EHLO hook's
calling convention (``inspect.signature``) and SMTP commands
(``dir(self)``).  Walking every attribute of both objects that way costs
more than the rest of the constructor and about 6-10% of a whole simulated
session.  The *names* in those tables depend only on the two classes, so
:class:`FastInitSMTP` finds them once per (protocol class, handler class)
and then only binds them with ``getattr`` for each new connection: the
tables hold the same keys, in the same order, with methods bound to the
same instances as aiosmtpd's (tests/test_server_init_cache.py compares
them, and every other attribute, with aiosmtpd's own constructor).

The names are cached only when they cannot differ between instances: both
classes use the default ``__dir__`` and neither instance has an attribute of
its own named ``auth_*``, ``handle_*`` or ``smtp_*``; anything else takes
aiosmtpd's path every time.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional, Union
from warnings import warn

from aiosmtpd.smtp import (CALL_LIMIT_DEFAULT, DATA_SIZE_DEFAULT, SMTP, AuthCallbackType,
                           AuthenticatorType, _AuthMechAttr, __ident__, is_int,
                           login_always_fail, make_loop)

log = logging.getLogger("mail.log")   # aiosmtpd's logger, for the same AUTH line

_PREFIXES = ("auth_", "handle_", "smtp_")


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


def _own_names(obj: Any) -> bool:
    """Whether ``obj`` has an instance attribute that could be a table entry."""
    return any(k.startswith(_PREFIXES) for k in getattr(obj, "__dict__", ()))


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


class FastInitSMTP(SMTP):
    """``aiosmtpd.smtp.SMTP`` whose constructor reuses per-class method names.

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
