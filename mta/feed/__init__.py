"""The SMTP feed (seed 001): its post-queue filter chain and its operator.

:mod:`mta.feed.chain`: :class:`~mta.feed.chain.FeedFilters` (virus scan,
then spam levels) with per-stage scanner processes and service times
(:mod:`mta.feed.costs`: :data:`~mta.feed.costs.DEFAULT_COSTS`, the feed
role's configuration).  :mod:`mta.feed.operations`:
:class:`~mta.feed.operations.FeedOperator` (extend a client's queue time,
switch it to temporary POP3 mailboxes and back).  The role that builds it, with
greylisting in the SMTP dialogue, is :class:`mta.roles.SmtpFeed`.
"""
