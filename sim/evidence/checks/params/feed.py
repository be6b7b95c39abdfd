"""Parameters of the SMTP feed's queue, latency and lock-down checks.

The parameter models and the causes their counterexamples name: what validating a scenario needs
of :mod:`sim.evidence.checks.feed`, kept apart from the checks so that ``mxsim validate`` loads
neither the checks nor the evidence model.  The checks use these same classes.
"""
from __future__ import annotations

from pydantic import Field

from sim.evidence.checks.params import Duration, Host, Number, Params, Texts


class FeedQueueParams(Params):
    feed: Host = Field(description="the feed server")
    client: Host = Field(description="the client server whose link comes and goes")
    lifetime: Duration = Field("2d", description="how long the feed holds mail")
    max_gap: Duration = Field("1h", description="longest pause between rounds while alive")
    tolerance: Duration = Field(1, description="slack on each bound")


class FeedLatencyParams(Params):
    feed: Host = Field(description="the feed server")
    client: Host = Field(description="the client server")
    median: Number = Field(20, description="highest allowed median latency, in seconds")


class FeedLockdownParams(Params):
    client: Host = Field(description="the locked-down client server")
    allowed: Texts = Field(description="addresses or CIDR blocks allowed to connect "
                                       "(the feed, loopback, the LAN)")


#: The parameter model of each check here (a check missing takes none).
PARAMS: dict[str, type[Params]] = {
    "feed-queue-2d": FeedQueueParams,
    "feed-latency-20s": FeedLatencyParams,
    "feed-lockdown": FeedLockdownParams,
}

#: The causes each check here names in its counterexamples (what an
#: ``expect: violated`` may give as ``because:``), with their meanings.
CAUSES: dict[str, dict[str, str]] = {
    "feed-queue-2d": {
        "bounced-early": "a copy bounced before its lifetime (the operator's, once extended)",
        "kept-past-lifetime": "a copy still queued, or relayed, later than its lifetime allows",
        "retry-gap": "no delivery round for longer than max_gap while the copy was queued",
        "not-held": "a copy that ended neither delivered, bounced nor queued (lost)",
        "both-services": "a copy tried at a server while its domain was on POP3 mailboxes, "
                         "or filed into them while it was on the feed"},
    "feed-latency-20s": {
        "median-over-limit": "the median latency is above the limit (the slowest shown)"},
}
