"""The SMTP feed's operator actions (seed 001).

"Should a client with an SMTP feed encounter a problem that is likely to
take longer than 2 days to resolve then we can be asked to extend the queue
time or setup temporary POP3 mailboxes (with webmail) so that the messages
can be viewed; we can then be asked to revert to the SMTP feed once the
client's mail server is back online."  And: "you can swap from one or the
other but not have both at the same time."

:class:`FeedOperator` carries these out on one feed host's queue, live or
simulated, and each action is on the record:

* :meth:`~FeedOperator.extend_queue`: the queue's lifetime for the client
  domain, for mail already queued too (``QueueLifetimeSet``);
* :meth:`~FeedOperator.switch_to_mailboxes`: the queue files the domain's
  mail, and what is waiting for the client's server, into its mailbox
  store, and a POP3 server serves those mailboxes (``DeliveryModeSet``
  ``mailboxes``);
* :meth:`~FeedOperator.switch_to_feed`: the domain's mail is relayed to
  the client's server again and nothing more is filed into the mailboxes
  (``DeliveryModeSet`` ``feed``, with ``left``, the copies they still hold).

Only one of the two ever receives the domain's mail: the queue's answer
for the domain (:meth:`mta.queue.manager.QueueManager.set_local`) changes
in one step, and every delivery round asks it when it starts.  What the
mailboxes still hold at the switch back stays readable over POP3 (the
client fetches it; deleting unread mail would lose it); only the receiving
switches.
"""
from __future__ import annotations

from typing import Any, Mapping

from mta import events as ev
from mta.context import HostContext
from mta.pop3.maildrop import MailboxStoreDrops, MaildropLocks
from mta.pop3.server import POP3_PORT, Pop3Server
from mta.queue.manager import QueueManager


class OperatorError(ValueError):
    """An action the feed cannot carry out (not its client, wrong mode)."""


class FeedOperator:
    """Operator actions on the feed whose queue is ``queue`` and whose
    client domains are ``clients`` (its ``relay_domains``)."""

    def __init__(self, ctx: HostContext, queue: QueueManager, clients: tuple[str, ...]) -> None:
        self.ctx = ctx
        self.queue = queue
        self.clients = tuple(d.lower() for d in clients)
        self.active: set[str] = set()                     # domains on POP3 mailboxes now
        self.accounts: dict[str, dict[str, str]] = {}    # domain -> {user: password}, kept
        self.locks = MaildropLocks()
        self.pop3: Pop3Server | None = None
        self.port = POP3_PORT

    def _client(self, domain: str) -> str:
        d = domain.lower().rstrip(".")
        if d not in self.clients:
            raise OperatorError(f"{d} is not a client of the feed {self.ctx.hostname} "
                                f"(clients: {', '.join(self.clients)})")
        return d

    def extend_queue(self, domain: str, lifetime: float) -> None:
        """Keep ``domain``'s mail ``lifetime`` seconds after queueing."""
        self.queue.set_lifetime(self._client(domain), lifetime)

    async def switch_to_mailboxes(self, domain: str, users: Mapping[str, str],
                                  port: int = POP3_PORT) -> None:
        """Temporary POP3 mailboxes for ``domain`` (``users``: mailbox
        address -> password) instead of the feed."""
        d = self._client(domain)
        if d in self.active:
            raise OperatorError(f"{d} is on POP3 mailboxes already")
        self.active.add(d)
        self.accounts[d] = {u.lower(): p for u, p in users.items()}
        self.port = port
        self._record(d, "mailboxes", accounts=tuple(sorted(self.accounts[d])))
        self.queue.set_local(d, True)
        await self._serve()

    async def switch_to_feed(self, domain: str) -> None:
        """Back to the SMTP feed for ``domain``: nothing more is filed into
        its mailboxes; what they still hold stays readable over POP3 until
        the client has fetched it (deleting unread mail would lose it)."""
        d = self._client(domain)
        if d not in self.active:
            raise OperatorError(f"{d} is on the SMTP feed already")
        self.active.discard(d)
        self.queue.set_local(d, False)
        left = sum(len(msgs) for box, msgs in self.queue.mailboxes.boxes.items()
                   if box.rpartition("@")[2] == d)
        self._record(d, "feed", left=left)

    def _record(self, domain: str, mode: str, **kw: Any) -> None:
        self.ctx.sink.emit(ev.DeliveryModeSet(t=self.ctx.now(), host=self.ctx.hostname,
                                              domain=domain, mode=mode, **kw))  # type: ignore[arg-type]

    async def _serve(self) -> None:
        """(Re)start the POP3 server with the accounts of every domain
        switched so far (one server per host)."""
        if self.pop3 is not None:
            await self.pop3.stop()
            self.pop3 = None
        users = {u: p for d in sorted(self.accounts) for u, p in sorted(self.accounts[d].items())}
        if not users:
            return
        self.pop3 = Pop3Server(self.ctx, MailboxStoreDrops(self.queue.mailboxes), users,
                               port=self.port, locks=self.locks)
        await self.pop3.start()
