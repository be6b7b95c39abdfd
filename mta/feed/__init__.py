"""The SMTP feed (seed 001): its post-queue filter chain and its operator.

:mod:`mta.feed.chain`: :class:`~mta.feed.chain.FeedFilters` (virus scan,
then spam levels) with per-stage scanner processes and service times
(:data:`~mta.feed.chain.DEFAULT_COSTS`).  :mod:`mta.feed.operations`:
:class:`~mta.feed.operations.FeedOperator` (extend a client's queue time,
switch it to temporary POP3 mailboxes and back).  The role that builds it, with
greylisting in the SMTP dialogue, is :class:`mta.roles.SmtpFeed`.
"""
from mta.feed.chain import DEFAULT_COSTS, FeedFilters, StageCost

__all__ = ["DEFAULT_COSTS", "FeedFilters", "StageCost"]
