"""mta.smtp.aiosmtpd_fence: aiosmtpd's constructor with the method tables found
once per class pair, and the public face of aiosmtpd's private methods.  The tables (and every other attribute) must be what
aiosmtpd 1.4.6's own ``SMTP.__init__`` builds, bound to the right objects,
and the introspection must not run again for later connections."""
from __future__ import annotations

import asyncio
import hashlib
import inspect
import warnings

import pytest
from aiosmtpd.smtp import SMTP, auth_mechanism

import mta.smtp.aiosmtpd_fence as fence
from mta.smtp.basic import send_message
from mta.context import HostContext
from mta.events import ConnectionOpened
from mta.events.sinks import MemorySink
from mta.roles import CustomerMailServer
from mta.smtp.aiosmtpd_fence import FencedSMTP
from mta.smtp.config import ServerConfig
from mta.smtp.server import SmtpServer
from mta.smtp.session import ReceivingSMTP
from sim.world.core import World

MX_IP = "192.0.2.25"
ZONE = ("$ORIGIN customer.example.\n"
        "@ 3600 IN SOA ns.customer.example. hostmaster.customer.example. 1 3600 600 86400 60\n"
        "@ 3600 IN MX 10 mx.customer.example.\n"
        f"mx 3600 IN A {MX_IP}\n")


class RichHandler:
    """A handler with everything the tables look for: AUTH mechanisms (one
    renamed by aiosmtpd's decorator, one overriding a builtin), a 5-argument
    EHLO hook and ordinary hooks."""

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        return responses

    async def handle_DATA(self, server, session, envelope):
        return "250 OK"

    async def auth_X_TEST(self, server, args):    # mechanism "X_TEST"
        return None

    @auth_mechanism("X-NAMED")
    async def auth_whatever(self, server, args):
        return None

    async def auth_PLAIN(self, server, args):      # the handler's wins over the builtin
        return None

    async def auth_CRAM__MD5(self, server, args):  # "__" becomes "-": CRAM-MD5
        return None


class OldEhloHandler:
    async def handle_EHLO(self, server, session, envelope, hostname):
        return "250 old"


def test_constructor_replica_is_of_this_aiosmtpd_constructor() -> None:
    """FencedSMTP.__init__ copies aiosmtpd 1.4.6's SMTP.__init__: if that
    source changes, compare the two again and update the digest."""
    source = inspect.getsource(SMTP.__init__).encode()
    assert hashlib.sha256(source).hexdigest() == (
        "8a9ca80f23ad9bf273e58e284170e9f919dc6269b280ca0624ac0603a8ad3604")


def _same_table(ref: SMTP, fast: SMTP, ref_table: dict, fast_table: dict) -> None:
    """Same keys in the same order, same functions, bound to the matching
    object: ``ref``'s methods to ``ref`` and ``fast``'s to ``fast``; the
    handler's to the (shared) handler."""
    assert list(ref_table) == list(fast_table)
    for key, r in ref_table.items():
        f = fast_table[key]
        if isinstance(r, tuple):           # _AuthMechAttr(method, is_builtin)
            assert r.is_builtin == f.is_builtin, key
            r, f = r.method, f.method
        assert r.__func__ is f.__func__, key
        if r.__self__ is ref:
            assert f.__self__ is fast, key
        else:
            assert f.__self__ is r.__self__, key


def _compare(ref: SMTP, fast: SMTP) -> None:
    ref_vars, fast_vars = vars(ref), vars(fast)
    assert sorted(ref_vars) == sorted(fast_vars)
    for name in ("_auth_methods", "_handle_hooks", "_smtp_methods"):
        _same_table(ref, fast, ref_vars[name], fast_vars[name])
    assert ref._ehlo_hook_ver == fast._ehlo_hook_ver
    assert ref._stream_reader._limit == fast._stream_reader._limit
    for name, r in ref_vars.items():
        if name in ("_auth_methods", "_handle_hooks", "_smtp_methods"):
            continue
        f = fast_vars[name]
        # Per-instance objects (reader, futures, weakrefs) cannot be equal.
        assert r == f or (type(r) is type(f) and not isinstance(
            r, (int, float, str, bytes, tuple, type(None)))), name


def _reference(monkeypatch: pytest.MonkeyPatch, make):
    """Build with aiosmtpd's own constructor in place of FencedSMTP's."""
    with monkeypatch.context() as m:
        m.setattr(FencedSMTP, "__init__", SMTP.__init__)
        return make()


@pytest.mark.parametrize("users", [None, {"u": "p"}])
def test_receiving_smtp_matches_aiosmtpd_constructor(monkeypatch, users) -> None:
    loop = asyncio.new_event_loop()
    try:
        ctx = HostContext("mx.example.net", sink=MemorySink())
        role = CustomerMailServer(hostname="mx.example.net", local_domains=("example.net",),
                                  mailboxes=("a@example.net",))
        server = SmtpServer(ctx, role.build_chain(), None, ServerConfig(users=users))
        ref = _reference(monkeypatch, lambda: ReceivingSMTP(server, loop))
        fast = ReceivingSMTP(server, loop)
        fast2 = ReceivingSMTP(server, loop)      # from the cache this time
        assert type(ref).__init__ is ReceivingSMTP.__init__
        _compare(ref, fast)
        _compare(ref, fast2)
        assert fast._smtp_methods["ETRN"].__self__ is fast       # our own command
        assert fast2._smtp_methods["MAIL"].__func__ is ReceivingSMTP.smtp_MAIL
        assert fast2._handle_hooks["RSET"].__self__ is server.handler
        assert list(fast._auth_methods) == ["LOGIN", "PLAIN"]     # aiosmtpd's builtins
    finally:
        loop.close()


def test_plain_subclass_matches_plain_smtp_on_same_handler(monkeypatch) -> None:
    """Against aiosmtpd's SMTP itself, on a handler with AUTH mechanisms and
    an EHLO hook, with keyword arguments our server does not use."""
    loop = asyncio.new_event_loop()
    try:
        handler = RichHandler()
        kw = dict(hostname="h.example", auth_exclude_mechanism=["LOGIN"],
                  command_call_limit={"NOOP": 3}, auth_require_tls=False, loop=loop)
        plain = SMTP(handler, **kw)
        fast = FencedSMTP(handler, **kw)
        assert list(plain._auth_methods) == list(fast._auth_methods)
        assert "LOGIN" not in fast._auth_methods
        assert {"X_TEST", "X-NAMED", "CRAM-MD5", "PLAIN"} <= set(fast._auth_methods)
        assert fast._auth_methods["PLAIN"].is_builtin is False
        assert fast._auth_methods["PLAIN"].method.__self__ is handler
        assert fast._ehlo_hook_ver == plain._ehlo_hook_ver == "new"
        assert fast._handle_hooks == plain._handle_hooks
        assert list(fast._smtp_methods) == list(plain._smtp_methods)
        for cmd, method in fast._smtp_methods.items():
            assert method.__self__ is fast and method.__func__ is plain._smtp_methods[cmd].__func__
        _compare(_reference(monkeypatch, lambda: FencedSMTP(handler, **kw)),
                 FencedSMTP(handler, **kw))
    finally:
        loop.close()


def test_old_ehlo_hook_warns_every_time_and_odd_handlers_are_not_cached() -> None:
    loop = asyncio.new_event_loop()
    try:
        for _ in range(2):                 # aiosmtpd warns per construction
            with pytest.warns(DeprecationWarning):
                assert FencedSMTP(OldEhloHandler(), hostname="h", loop=loop)._ehlo_hook_ver == "old"
        # A hook set on one handler instance only must not leak to others.
        odd = RichHandler()
        odd.handle_NOOP = lambda *a: "250 odd"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert "NOOP" in FencedSMTP(odd, hostname="h", loop=loop)._handle_hooks
            assert "NOOP" not in FencedSMTP(RichHandler(), hostname="h", loop=loop)._handle_hooks
            assert "NOOP" in FencedSMTP(odd, hostname="h", loop=loop)._handle_hooks
    finally:
        loop.close()


def _sessions(n: int) -> tuple[list, list]:
    world = World(seed=5, scenario="init-cache")
    sender = world.add_host("mail.sender.example", "198.51.100.10")
    mx = world.add_host("mx.customer.example", MX_IP)
    world.set_zones(ZONE)
    role = CustomerMailServer(hostname=mx.name, local_domains=("customer.example",),
                              mailboxes=("alice@customer.example",))
    server = role.build_server(mx.ctx, role.build_store(mx.ctx))
    world.run_until_complete(mx, server.start(port=25))

    async def traffic() -> list:
        return [await send_message(MX_IP, 25, "mail.sender.example", "bob@sender.example",
                                   ["alice@customer.example"], b"Subject: x\r\n\r\nhi\r\n")
                for _ in range(n)]
    transcripts = world.run_until_complete(sender, traffic())
    return transcripts, [e for e in world.events if isinstance(e, ConnectionOpened)]


def _count_getmembers(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    calls: list[object] = []
    real = inspect.getmembers

    def counting(obj, predicate=None):
        calls.append(obj)
        return real(obj, predicate)
    monkeypatch.setattr(inspect, "getmembers", counting)
    return calls


def test_introspection_runs_once_not_per_connection(monkeypatch) -> None:
    monkeypatch.setattr(fence, "_CACHE", {})    # start cold
    calls = _count_getmembers(monkeypatch)
    transcripts, opened = _sessions(5)
    assert len(opened) == 5
    assert all(t[-2][1] == 250 for t in transcripts)
    # The first connection walks the protocol and the handler; later ones do not.
    assert [type(c).__name__ for c in calls] == ["ReceivingSMTP", "ReplyHooks"]


def test_aiosmtpd_constructor_would_introspect_every_connection(monkeypatch) -> None:
    """The counter sees aiosmtpd's path: two walks per connection."""
    monkeypatch.setattr(FencedSMTP, "__init__", SMTP.__init__)
    calls = _count_getmembers(monkeypatch)
    transcripts, opened = _sessions(3)
    assert len(opened) == 3 and len(calls) == 6
    assert all(t[-2][1] == 250 for t in transcripts)


def test_public_face_of_the_private_tables() -> None:
    loop = asyncio.new_event_loop()
    try:
        plain = FencedSMTP(RichHandler(), hostname="h", auth_require_tls=False, loop=loop)
        assert plain.offered_auth() == sorted(plain._auth_methods)
        assert FencedSMTP(RichHandler(), hostname="h", auth_require_tls=True,
                          loop=loop).offered_auth() == []     # no TLS here: nothing offered
        assert plain.command_method("NOOP").__func__ is SMTP.smtp_NOOP
        assert plain.command_method("XYZZY") is None
    finally:
        loop.close()


def test_isolated_command_limits_leave_the_class_dict_alone() -> None:
    before = dict(SMTP.command_size_limits)
    loop = asyncio.new_event_loop()
    try:
        server = SmtpServer(HostContext("mx.example.net", sink=MemorySink()),
                            CustomerMailServer(hostname="mx.example.net",
                                               local_domains=("example.net",),
                                               mailboxes=("a@example.net",)).build_chain(),
                            None, ServerConfig(command_size_limit=2048))
        smtp = ReceivingSMTP(server, loop)
        assert smtp.command_size_limit == 2048 and smtp.line_length_limit >= 2048 + 28
        assert smtp._stream_reader._limit == smtp.line_length_limit
        assert "command_size_limits" in vars(smtp)
    finally:
        loop.close()
    assert dict(SMTP.command_size_limits) == before
