"""Parameters of the SMTP feed's filter checks (virus, greylisting, spam levels).

The parameter models and the causes their counterexamples name: what validating a scenario needs
of :mod:`sim.evidence.checks.feed_filters`, kept apart from the checks so that ``mxsim
validate`` loads neither the checks nor the evidence model.  The checks use these same classes.
"""
from __future__ import annotations

from pydantic import Field

from sim.evidence.checks.params import Count, Duration, Host, Number, Params, Text


#: postgrey 1.37 defaults (--delay, --retry-window, --auto-whitelist-clients)
#: and the seed's spam levels (SpamAssassin points) with their default actions.
FEED_DEFAULTS = {"delay": 300.0, "retry_window": 2 * 86400.0, "awl": 5, "ipv4_cidr": 24,
                 "low": 3.0, "med": 5.0, "high": 10.0,
                 "actions": {"low": "header", "med": "subject", "high": "delete"}}


class FeedVirusParams(Params):
    feed: Host = Field(description="the feed server")


class FeedGreylistParams(Params):
    feed: Host = Field(description="the feed server")
    delay: Duration = Field(FEED_DEFAULTS["delay"], description="greylisting delay")
    retry_window: Duration = Field(FEED_DEFAULTS["retry_window"],
                                   description="how long a first retry may take")
    auto_whitelist: Count = Field(FEED_DEFAULTS["awl"],
                                  description="passes after which a client may be whitelisted "
                                              "(0: never)")
    ipv4_cidr: Count = Field(FEED_DEFAULTS["ipv4_cidr"], description="client network size")


class SpamLevelActions(Params):
    low: Text = Field(FEED_DEFAULTS["actions"]["low"], description="action at level low")
    med: Text = Field(FEED_DEFAULTS["actions"]["med"], description="action at level med")
    high: Text = Field(FEED_DEFAULTS["actions"]["high"], description="action at level high")


class FeedSpamParams(Params):
    feed: Host = Field(description="the feed server")
    enabled: bool = Field(False, description="spam checking on (off by default, seed 001)")
    low: Number = Field(FEED_DEFAULTS["low"], description="score where level low starts")
    med: Number = Field(FEED_DEFAULTS["med"], description="score where level med starts")
    high: Number = Field(FEED_DEFAULTS["high"], description="score where level high starts")
    actions: SpamLevelActions = Field(default_factory=SpamLevelActions,
                                      description="the action per level")


#: The parameter model of each check here (a check missing takes none).
PARAMS: dict[str, type[Params]] = {
    "feed-virus-deleted": FeedVirusParams,
    "feed-greylisting": FeedGreylistParams,
    "feed-spam-levels": FeedSpamParams,
}

#: The causes each check here names in its counterexamples (none so far: an
#: ``expect: violated`` of these checks cannot give ``because:``).
CAUSES: dict[str, dict[str, str]] = {}
