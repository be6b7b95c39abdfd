"""The authenticated relay's abusers (seed 003): mail clients of customers
that break its limits, each a :class:`~sim.actors.roaming.RoamingCustomerActor`
with one behaviour changed:

* :class:`ListAbuserActor` mails hundreds of recipients in one go and, like
  a bulk mailer, keeps the recipients the relay refused (452 4.5.3 past its
  limit of 30) for the next transaction on the same connection;
* :class:`LargeSenderActor` sends messages over the size limit, with
  ``SIZE=`` declared (RFC 1870) when the relay advertises SIZE, or without;
* :class:`CompromisedAccountActor` sends at its owner's rate and then, from
  the burst on, also at the thief's rate, through the same AUTH.

Their outcomes are :class:`~mta.events.ClientSubmission` events, like the
roaming customer's; the relay's own events say how it answered.
"""
from __future__ import annotations

import heapq

import aiosmtplib

from sim.actors import generate as g
from sim.actors.roaming import RoamingCustomerActor
from sim.scenario.traffic import CompromisedAccount, LargeSender, ListAbuser


class ListAbuserActor(RoamingCustomerActor):
    """Runs one ``list-abuser`` entry (see the module docstring)."""

    spec: ListAbuser

    async def transact(self, client: aiosmtplib.SMTP, port: int, mail_from: str,
                       rcpts: list[str], data: bytes) -> str:
        left, sent, batch = list(rcpts), 0, 0
        last = (0, "")
        while left and batch < self.spec.batches:
            batch += 1
            try:
                await client.mail(mail_from)
            except aiosmtplib.SMTPResponseException as exc:
                return self._result("smtp", port, "rejected", exc.code, f"MAIL: {exc.message}",
                                    mail_from)
            took, refused = [], []
            for r in left:
                try:
                    await client.rcpt(r)
                    took.append(r)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    refused.append(r)
                    last = (exc.code, exc.message)
            if not took:
                await client.rset()
                break
            try:
                await client.data(data)
            except aiosmtplib.SMTPResponseException as exc:
                return self._result("smtp", port, "rejected", exc.code, f"DATA: {exc.message}",
                                    mail_from)
            sent += len(took)
            left = refused
        if left:
            return self._result("smtp", port, "rejected", last[0],
                                f"{sent} recipients sent in {batch} transactions, "
                                f"{len(left)} refused: {last[1]}", mail_from)
        return self._result("smtp", port, "sent", 250,
                            f"{sent} recipients in {batch} transactions", mail_from)


class LargeSenderActor(RoamingCustomerActor):
    """Runs one ``large-sender`` entry (see the module docstring)."""

    spec: LargeSender

    def mail_options(self, client: aiosmtplib.SMTP, data: bytes) -> list[str]:
        # RFC 1870 §6: the declared size counts the message's octets with CRLFs.
        if self.spec.declare_size and client.supports_extension("size"):
            return [f"SIZE={len(data)}"]
        return []


class CompromisedAccountActor(RoamingCustomerActor):
    """Runs one ``compromised-account`` entry (see the module docstring)."""

    spec: CompromisedAccount

    def messages(self):
        spec = self.spec
        own = ((t, spec) for t in g.schedule(self.rng, spec, self.stop))
        b = spec.burst
        thief = spec.model_copy(update={"rate": b.rate, "arrivals": "fixed",
                                        "daily_pattern": None, "count": None,
                                        "start": b.at, "stop": min(b.at + b.for_, self.stop),
                                        "to": spec.burst_to or spec.to})
        burst = ((t, thief) for t in g.schedule(self.rng, thief, thief.stop))
        # Merged in time order; at the same instant the owner's message first.
        return (m for _, _, m in heapq.merge(((t, 0, (t, s)) for t, s in own),
                                             ((t, 1, (t, s)) for t, s in burst)))


#: The actor class of each roaming kind of the scenario schema.
ROAMING_ACTORS = {"roaming-customer": RoamingCustomerActor, "list-abuser": ListAbuserActor,
                  "large-sender": LargeSenderActor,
                  "compromised-account": CompromisedAccountActor}
