"""Content filters of the SMTP feed and the restricted relays.

* :mod:`mta.filters.mime`: the MIME walk every filter reads (parts decoded,
  archives opened, limits, malformed input reported).
* :mod:`mta.filters.virus`: ``VirusVerdict`` and the built-in EICAR scanner;
  :mod:`mta.filters.clamav`: the clamd adapter (``aioclamd``).
* :mod:`mta.filters.spam`: ``SpamScore`` and the built-in rule scorer;
  :mod:`mta.filters.spamd`: the spamd adapter (``aiospamc``).
* :mod:`mta.filters.levels`: the seed's four spam levels, thresholds and the
  pure ``apply`` of each level's action.
* :mod:`mta.filters.attachments`: blocked file names over the walk.
* :mod:`mta.filters.replies`: the SMTP replies the callers give.

Nothing here emits events or reads a clock: stages return verdicts, the
caller (the feed's chain, the relay's DATA hook) logs and replies.  The
adapters are imported from their own modules so that the simulation never
needs ``aioclamd`` or ``aiospamc`` loaded.
"""
