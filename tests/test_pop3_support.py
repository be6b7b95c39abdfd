"""The POP3 server's pure helpers: the POP-before-SMTP grant table, the
login throttle, the MailboxStore adapter and the server's settings."""
from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mta.context import HostContext
from mta.mailbox import Deflated, MailboxStore, StoredMessage
from mta.pop3 import (DEFAULT_WINDOW, DropMessage, LoginThrottle, MailboxStoreDrops,
                      MaildropLocks, Pop3Server, RelayGrants, ThrottleConfig, accounts_from)


# -- grants ----------------------------------------------------------------------

def test_grant_window_is_ninety_minutes_and_expiry_is_exact() -> None:
    g = RelayGrants()
    assert DEFAULT_WINDOW == g.window == 5400.0
    assert not g.allowed("192.0.2.1", 100.0)
    g.grant("192.0.2.1", 100.0, "bob")
    assert not g.allowed("192.0.2.1", 99.999)
    assert g.allowed("192.0.2.1", 100.0) and g.allowed("192.0.2.1", 5499.999)
    assert not g.allowed("192.0.2.1", 5500.0)
    assert not g.allowed("192.0.2.2", 200.0)


def test_each_login_renews_a_full_window_and_late_stamps_never_shorten() -> None:
    g = RelayGrants(window=60)
    g.on_login("192.0.2.1", "bob", 0.0)
    g.on_login("192.0.2.1", "ann", 50.0)
    assert g.allowed("192.0.2.1", 109.9) and not g.allowed("192.0.2.1", 110.0)
    assert g.current("192.0.2.1", 100.0).user == "ann"
    g.grant("192.0.2.1", 10.0, "eve")              # older than the current grant
    assert g.current("192.0.2.1", 100.0).user == "ann"
    assert g.current("192.0.2.1", 200.0) is None


def test_prune_forgets_closed_grants_only() -> None:
    g = RelayGrants(window=10)
    g.grant("a", 0.0)
    g.grant("b", 5.0)
    assert g.prune(10.0) == 1 and len(g) == 1 and g.allowed("b", 14.0)


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=20), st.floats(0, 2e6))
def test_allowed_iff_some_login_within_the_window_before(logins, t) -> None:
    g = RelayGrants(window=5400)
    for x in logins:                 # in order, as a POP3 server reports them
        g.grant("ip", x)
    latest = max(logins)
    assert g.allowed("ip", t) == (latest <= t < latest + 5400)


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RelayGrants(window=0)


# -- throttle ---------------------------------------------------------------------

def test_default_throttle_delays_and_window() -> None:
    t = LoginThrottle()
    delays = [t.record_failure("ip", float(i)) for i in range(7)]
    assert delays == [0.0, 0.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert t.failures("ip", 6.0) == 7 and t.failures("other", 6.0) == 0
    assert t.failures("ip", 900.0 + 3.5) == 3          # the first four aged out
    assert not t.cut_off(4) and t.cut_off(5)


def test_throttle_config_is_validated() -> None:
    with pytest.raises(ValueError):
        ThrottleConfig(max_failures=0)
    with pytest.raises(ValueError):
        ThrottleConfig(base_delay=5, max_delay=1)


# -- the MailboxStore adapter --------------------------------------------------------

def stored(msg: str, rcpt: str, data: bytes = b"x\r\n") -> StoredMessage:
    return StoredMessage(msg=msg, trace=msg, mail_from="a@b.example", rcpt=rcpt,
                         body=Deflated.of(data))


def test_uids_are_stable_unique_and_short_whatever_the_host_name() -> None:
    store = MailboxStore(HostContext("h"), mailboxes=["bob@c.example"])
    long_host = "a" * 60 + ".example"
    box = store.boxes["bob@c.example"]
    box += [stored(f"{long_host}/m1", "bob@c.example"), stored(f"{long_host}/m1", "alias@c.example"),
            stored(f"{long_host}/m2", "bob@c.example"), stored(f"{long_host}/m2", "bob@c.example")]
    drops = MailboxStoreDrops(store)
    uids = [m.uid for m in drops.listing("BOB@c.example")]
    assert len(set(uids)) == 4 and all(len(u) <= 70 for u in uids)
    assert uids == [m.uid for m in drops.listing("bob@c.example")]
    assert drops.delete("bob@c.example", [uids[1]]) == 1
    assert [m.uid for m in drops.listing("bob@c.example")] == [uids[0], uids[2], uids[3]]
    assert store.boxes["bob@c.example"] is box         # edited in place
    assert drops.delete("nobody@c.example", uids) == 0 and drops.listing("nobody@c.example") == []


def test_messages_delivered_during_a_session_survive_its_quit() -> None:
    async def go():
        store = MailboxStore(HostContext("h"), mailboxes=["bob@c.example"])
        drops = MailboxStoreDrops(store)
        for body in (b"one\r\n", b"two\r\n"):
            await store.accept(conn="c", client_ip="192.0.2.1", helo="x", mail_from="a@b.example",
                               rcpts=["bob@c.example"], acknowledged=["bob@c.example"], data=body)
        snapshot = drops.listing("bob@c.example")
        await store.accept(conn="c", client_ip="192.0.2.1", helo="x", mail_from="a@b.example",
                           rcpts=["bob@c.example"], acknowledged=["bob@c.example"], data=b"three\r\n")
        drops.delete("bob@c.example", [m.uid for m in snapshot])
        return [m.data.rsplit(b"\r\n", 2)[-2] for m in store.messages("bob@c.example")]

    assert asyncio.run(go()) == [b"three"]


def test_drop_message_checks_the_uid_grammar() -> None:
    for bad in ("", "a b", "x" * 71, "é"):
        with pytest.raises(ValueError):
            DropMessage(bad, b"")


def test_locks() -> None:
    locks = MaildropLocks()
    assert locks.acquire("Bob", "c1") and not locks.acquire("bob", "c2")
    locks.release("bob", "c2")                        # not the holder: no effect
    assert locks.holder("BOB") == "c1"
    locks.release("bob", "c1")
    assert len(locks) == 0 and locks.acquire("bob", "c2")


# -- server settings ---------------------------------------------------------------

def test_server_settings_are_checked() -> None:
    ctx = HostContext("pop.example")
    drops = MailboxStoreDrops(MailboxStore(ctx))
    with pytest.raises(ValueError, match="at least 600"):
        Pop3Server(ctx, drops, {"bob": "pw"}, idle_timeout=60)
    with pytest.raises(TypeError):
        Pop3Server(ctx, drops, {"bob": "pw"}, ssl=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="without a password"):
        accounts_from({"bob": "pw"}, {"eve": "eve@x.example"})
    assert accounts_from({"bob": "pw"})["bob"].mailbox == "bob"
