"""One scenario host on real sockets: its plan, built and started live.

:class:`LiveHost` takes the host's :class:`~sim.wiring.HostPlan` (the same
plan the simulation builds from) and runs it on the running asyncio loop:

* the queue on :class:`~mta.queue.sqlite_store.SqliteStore` in the state
  folder (``queue.sqlite``: WAL, fsync before the 250), replayed on start,
  so a restart after SIGKILL delivers everything acknowledged before it;
* the feed's greylisting memory in ``greylist.sqlite`` (it survives
  restarts, as postgrey's database does);
* final deliveries in Maildirs under ``mail/`` (:mod:`mta.maildir`),
  which the host's POP3 server (if it has one) reads: mailboxes survive
  restarts;
* every server of the plan on its :class:`~sim.live.listen.Endpoint`, the
  SMTP servers offering STARTTLS when given a certificate (the scenario
  format has no TLS: certificates are a property of the machine), and
  then AUTH only after STARTTLS;
* a connectivity probe per held domain, as in the simulation;
* IDs that stay unique across restarts: each start is a new *generation*
  (counted in ``generation`` in the state folder) and numbers its
  connections, sessions and messages from ``generation * 10**6``.

Stopping (:meth:`LiveHost.drain`) first stops accepting, lets the
transactions in progress finish (for at most ``grace`` seconds), closes
connections that are between transactions with a 421, then closes the
queue: what it was delivering is still in the store and is tried again on
the next start.
"""
from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mta.context import HostContext
from mta.events.sinks import EventSink
from mta.mailbox import MailboxStore
from mta.maildir import Maildir
from mta.ondemand.probe import ConnectivityProbe
from mta.queue.manager import QueueManager
from mta.queue.sqlite_store import SqliteStore
from sim.live.listen import DEFAULT_ADDRESS, Endpoint
from sim.wiring import HostPlan, ServerPlan, queue_configs

#: Files a live host keeps in its state folder.
QUEUE_DB = "queue.sqlite"
GREYLIST_DB = "greylist.sqlite"
MAIL_DIR = "mail"
GENERATION = "generation"
#: IDs issued by one start of the host (a generation) before the next one's.
IDS_PER_GENERATION = 10 ** 6
#: Seconds a stopping host waits for transactions in progress.
DEFAULT_GRACE = 30.0
SHUTDOWN_REPLY = b"421 4.3.2 Service shutting down, closing transmission channel\r\n"


class LiveContext(HostContext):
    """A live :class:`~mta.context.HostContext` whose IDs start at ``id_base``
    (so a restarted host never reuses a connection or message ID)."""

    def __init__(self, *args: Any, id_base: int = 0, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.id_base = id_base

    def next_id(self, prefix: str) -> str:
        self._ids.setdefault(prefix, self.id_base)
        return super().next_id(prefix)

    def reserve_ids(self, prefix: str, high: int) -> None:
        self._ids.setdefault(prefix, self.id_base)
        super().reserve_ids(prefix, high)


def next_generation(state: Path) -> int:
    """Count this start in ``state/generation`` (durably) and return it."""
    path = state / GENERATION
    previous = int(path.read_text() or 0) if path.exists() else 0
    tmp = state / (GENERATION + ".tmp")
    with open(tmp, "w") as f:
        f.write(f"{previous + 1}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return previous + 1


def delivers_locally(plan: HostPlan) -> bool:
    """Whether ``plan``'s host files mail into mailboxes (a primary MX, a
    customer server, a sending MTA receiving its DSNs)."""
    return bool(plan.local_domains) or any(s.store for s in plan.servers)


def maildir(plan: HostPlan, state: Path) -> Maildir:
    """Where ``plan``'s host keeps its mailboxes in ``state``."""
    return Maildir(state / MAIL_DIR, plan.name)


@dataclass(frozen=True)
class Listening:
    """A server that is ready: what it speaks, where, and for which port."""

    service: str
    bound: Endpoint
    port: int                # the scenario's port
    host: str

    def line(self) -> str:
        return f"listening {self.service} {self.bound} (port {self.port} of {self.host})"


@dataclass
class LiveHost:
    """A planned host, started on real sockets (see the module docstring)."""

    plan: HostPlan
    state: Path
    sink: EventSink
    resolver: Any
    listen: dict[int, Endpoint] = field(default_factory=dict)
    clock: Callable[[], float] | None = None
    grace: float = DEFAULT_GRACE
    tls: Any = None          # an ssl.SSLContext: every SMTP server offers STARTTLS
    queue: QueueManager | None = None
    servers: list[Any] = field(default_factory=list)
    probes: list[asyncio.Task] = field(default_factory=list)
    recovered: int = 0
    _stores: list[Any] = field(default_factory=list)

    def endpoint(self, server: ServerPlan) -> Endpoint:
        """Where ``server`` listens: its ``--listen`` entry, else 127.0.0.1
        on the scenario's port."""
        return self.listen.get(server.port, Endpoint(DEFAULT_ADDRESS, server.port))

    async def start(self) -> list[Listening]:
        """Recover the queue, then start every server; returns what listens."""
        ctx = LiveContext(hostname=self.plan.name, sink=self.sink, resolver=self.resolver,
                          clock=self.clock or time.time,
                          id_base=next_generation(self.state) * IDS_PER_GENERATION)
        disk = maildir(self.plan, self.state) if delivers_locally(self.plan) else None
        if self.plan.needs_queue:
            store = SqliteStore(str(self.state / QUEUE_DB))
            self._stores.append(store)
            queue_config, delivery = queue_configs(self.plan)
            self.queue = QueueManager(ctx, store, queue_config, delivery,
                                      mailboxes=MailboxStore(ctx, maildir=disk),
                                      content_filter=self.plan.content_filter)
            self.recovered = await self.queue.start()
        greylist = self._greylist_store()
        ready = []
        for server in self.plan.servers:
            if greylist is not None and "greylist_store" in server.extra:
                server.extra["greylist_store"] = greylist
            impl = server.build(ctx, self.queue, maildir=disk)
            if self.tls is not None and server.service == "smtp":
                # With a certificate, AUTH only after STARTTLS (Postfix's
                # smtpd_tls_auth_only = yes): no password crosses in clear.
                impl.config = dataclasses.replace(impl.config, tls_context=self.tls,
                                                  auth_require_tls=True)
            where = self.endpoint(server)
            srv = await impl.start(host=where.address, port=where.port)
            self.servers.append(impl)
            bound = srv.sockets[0].getsockname()
            ready.append(Listening(server.service, Endpoint(bound[0], bound[1]), server.port,
                                   self.plan.name))
        for config in self.plan.probes:
            probe = ConnectivityProbe(ctx, self.queue, config)
            self.probes.append(asyncio.create_task(probe.run(), name=f"probe:{config.domain}"))
        return ready

    def _greylist_store(self) -> Any:
        if self.plan.greylist_store is None:
            return None
        from mta.policy.greylist_store import SqliteGreylistStore
        store = SqliteGreylistStore(str(self.state / GREYLIST_DB))
        self._stores.append(store)
        return store

    async def drain(self) -> None:
        """Stop accepting, finish transactions in progress, close everything."""
        for impl in self.servers:
            if impl.server is not None:
                impl.server.close()          # no new connections from here on
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace
        while loop.time() < deadline:
            busy = False
            for impl in self.servers:
                for conn in list(getattr(impl, "connections", ())):
                    if conn.envelope.mail_from is None and conn.transport is not None:
                        # Between transactions: nothing in flight to finish.
                        conn.transport.write(SHUTDOWN_REPLY)
                        conn.transport.close()
                    else:
                        busy = True
            if not busy:
                break
            await asyncio.sleep(0.05)
        for impl in self.servers:
            await impl.stop()
        for task in self.probes:
            task.cancel()
        await asyncio.gather(*self.probes, return_exceptions=True)
        if self.queue is not None:
            await self.queue.close()
        for store in self._stores:
            store.close()
