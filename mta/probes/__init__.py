"""Guarantee probes from outside: any SMTP server judged through its port.

A client-side package.  :mod:`mta.probes.findings` holds what a probe
observes (:class:`~mta.probes.findings.Reply`) and concludes
(:class:`~mta.probes.findings.Finding`); :mod:`mta.probes.judge` the pure
decisions, one function per probe, from replies to findings;
:mod:`mta.probes.client` the only I/O (a line-level SMTP client on asyncio
streams that keeps a transcript); :mod:`mta.probes.run` the dialogues that
gather the replies each judge needs.  No probe ever sends DATA for a
recipient it was not told is local: relay attempts end with RSET after
RCPT.
"""
