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
from mta.filters.attachments import (DEFAULT_BLOCKED, AttachmentRules, BlockedAttachment,
                                     find_blocked)
from mta.filters.levels import (Applied, LevelAction, SpamAction, SpamLevel, SpamSettings,
                                Thresholds, apply)
from mta.filters.mime import MimeWalk, Part, Problem, WalkLimits, walk
from mta.filters.replies import TEMPFAIL, Reply
from mta.filters.spam import BuiltinScorer, RuleHit, SpamScore, SpamScorer
from mta.filters.virus import EICAR, BuiltinScanner, Status, VirusScanner, VirusVerdict

__all__ = [
    "DEFAULT_BLOCKED", "AttachmentRules", "BlockedAttachment", "find_blocked",
    "Applied", "LevelAction", "SpamAction", "SpamLevel", "SpamSettings", "Thresholds", "apply",
    "MimeWalk", "Part", "Problem", "WalkLimits", "walk",
    "TEMPFAIL", "Reply",
    "BuiltinScorer", "RuleHit", "SpamScore", "SpamScorer",
    "EICAR", "BuiltinScanner", "Status", "VirusScanner", "VirusVerdict",
]
