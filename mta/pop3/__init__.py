"""A POP3 server (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS) over the mailbox
store the MX roles deliver into, and the POP-before-SMTP grant table.

* :mod:`mta.pop3.commands`: the grammar and the state table, as data;
* :mod:`mta.pop3.session`: one session as a pure state machine;
* :mod:`mta.pop3.maildrop`: the store protocol, its MailboxStore adapter, locks;
* :mod:`mta.pop3.throttle`: failed-login delays and cut-off;
* :mod:`mta.pop3.server`: the asyncio edge (live and simulated);
* :mod:`mta.pop3.grants`: POP-before-SMTP relay grants.

Wiring::

    store = MailboxStore(ctx, mailboxes=["bob@customer.example"])
    grants = RelayGrants()                       # 90 minutes
    pop = Pop3Server(ctx, MailboxStoreDrops(store), {"bob": "secret"},
                     mailboxes={"bob": "bob@customer.example"},
                     on_login=grants.on_login, ssl=None)
    await pop.start(None, 110)
"""
from mta.pop3.grants import DEFAULT_WINDOW, Grant, RelayGrants
from mta.pop3.maildrop import (DropMessage, MailboxStoreDrops, MaildropLocks, Maildrops,
                               MemoryDrops)
from mta.pop3.server import POP3_PORT, Pop3Protocol, Pop3Server
from mta.pop3.session import Account, Fact, Pop3Session, Step, accounts_from, apop_digest
from mta.pop3.throttle import LoginThrottle, ThrottleConfig

__all__ = [
    "Account", "DEFAULT_WINDOW", "DropMessage", "Fact", "Grant", "LoginThrottle",
    "MailboxStoreDrops", "MaildropLocks", "Maildrops", "MemoryDrops", "POP3_PORT",
    "Pop3Protocol", "Pop3Server", "Pop3Session", "RelayGrants", "Step", "ThrottleConfig",
    "accounts_from", "apop_digest",
]
