"""The receiving SMTP server: aiosmtpd with a policy chain and an event log.

:class:`SmtpServer` is built once per listening server from a HostContext,
a :class:`~mta.policy.PolicyChain`, a :class:`~mta.smtp.config.ServerConfig`
(protocol settings) and the
:class:`~mta.interfaces.MessageSink` that takes accepted mail.  Each
connection gets a :class:`~mta.smtp.session.ReceivingSMTP` (an aiosmtpd
``SMTP`` subclass: what it changes in aiosmtpd is listed there), which
consults the pure rules of :mod:`mta.smtp.rules` and
:mod:`mta.smtp.transaction` and asks the chain for every decision.  The
aiosmtpd handler is :class:`~mta.smtp.replies.ReplyHooks`, which only gives
reply texts.
"""
from __future__ import annotations

import asyncio
from typing import Any

from mta.context import HostContext
from mta.interfaces import MessageSink, ReleaseTarget
from mta.policy import PolicyChain
from mta.smtp.config import ServerConfig
from mta.smtp.replies import ReplyHooks
from mta.smtp.session import ReceivingSMTP


class SmtpServer:
    """A listening SMTP server: one per role instance and port."""

    def __init__(self, ctx: HostContext, chain: PolicyChain, sink: MessageSink | None,
                 config: ServerConfig | None = None,
                 release: ReleaseTarget | None = None) -> None:
        self.ctx = ctx
        self.chain = chain
        self.sink = sink
        self.config = config or ServerConfig()
        self.release = release
        self.handler = ReplyHooks()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connections: list["ReceivingSMTP"] = []   # live ones
        self.data_peak = 0    # most DATA octets any connection held at once
        self.server: asyncio.AbstractServer | None = None

    @property
    def banner(self) -> str:
        """The greeting text after "220 "."""
        return self.config.banner or f"{self.ctx.hostname} ESMTP"

    def emit(self, event_cls: type, **kw: Any) -> None:
        """Record an event stamped with this host and the current time."""
        self.ctx.sink.emit(event_cls(t=self.ctx.now(), host=self.ctx.hostname, **kw))

    def protocol(self) -> "ReceivingSMTP":
        """Protocol factory for ``loop.create_server``."""
        loop = self.loop or asyncio.get_running_loop()
        return ReceivingSMTP(self, loop)

    async def start(self, host: str | None = None, port: int | None = None, *,
                    reuse_port: bool | None = None) -> asyncio.AbstractServer:
        """Listen on ``host:port`` (port defaults to the config's);
        ``reuse_port``: share the port with other processes (SO_REUSEPORT)."""
        self.loop = asyncio.get_running_loop()
        self.server = await self.loop.create_server(
            self.protocol, host=host, port=self.config.port if port is None else port,
            reuse_port=reuse_port)
        return self.server

    async def stop(self) -> None:
        """Stop listening and close the connections still open."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for c in list(self.connections):
            if c.transport is not None:
                c.transport.close()
