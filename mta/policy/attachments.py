"""The blocked-attachment stage: refuse at end of DATA, naming the file.

Seed 003: "File Attachments such as .pif, .bat, .exe, .scr, etc are not
permitted".  The stage walks the message once with
:func:`mta.filters.mime.walk` and asks :func:`mta.filters.attachments.find_blocked`;
a hit is refused with ``550 5.7.1 Attachment "<name>" refused: .exe files
are not permitted`` (the reply of :mod:`mta.filters.replies`).  A walk
that could not inspect some content (a zip bomb cut off, a part past the
limits) is answered ``451 4.7.1`` (:data:`mta.filters.replies.TEMPFAIL`):
a hidden ``.exe`` must not pass because the walk gave up.  Either way the
decision carries a note naming the part, so the log says what was refused.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mta.filters.attachments import DEFAULT_RULES, AttachmentRules, find_blocked
from mta.filters.mime import walk
from mta.filters.replies import TEMPFAIL, quote_name
from mta.policy.chain import Stage
from mta.policy.decision import Decision, Facts, Note


@dataclass
class AttachmentStage(Stage):
    """Refuse messages carrying a blocked file name (see the module docstring)."""

    rules: AttachmentRules = field(default_factory=lambda: DEFAULT_RULES)
    name: str = "attachments"

    def on_data(self, facts: Facts, message: bytes) -> Decision | None:
        if facts.data_overflow or not message:
            return None             # the size stage answers an overflow; nothing to walk
        w = walk(message)
        hit = find_blocked(w, self.rules)
        if hit is not None:
            r = hit.reply
            extra = " in-archive" if hit.in_archive else ""
            extra += " double-extension" if hit.double_extension else ""
            return Decision.reject(self.name, r.code, r.enhanced, r.text, notes=(
                Note("blocked-attachment",
                     f"part={hit.where} ext={hit.extension}{extra} name={quote_name(hit.name)}"),))
        if not w.complete:
            kinds = ",".join(sorted({p.kind for p in w.unscanned}))
            return Decision.defer(self.name, TEMPFAIL.code, TEMPFAIL.enhanced, TEMPFAIL.text,
                                  notes=(Note("unscanned", f"attachments: {kinds}"),))
        return None
