"""The delivery reply rules: one table, complete, rendered for the docs,
and what the client does with each rule it looks up."""
from __future__ import annotations

import pytest

from mta.delivery.client import BOUNCED, DEFERRED, apply_rule
from mta.delivery.reply_rules import (RULES, Action, ReplyClass, Stage, action_for, render_markdown,
                                     reply_class)
from mta.delivery.routing import Destination


def test_table_covers_every_stage_and_reply_class():
    assert set(RULES) == {(s, c) for s in Stage for c in ReplyClass}
    assert all(isinstance(a, Action) for a in RULES.values())


def test_rendered_table_has_one_row_per_stage_with_every_rule():
    md = render_markdown().splitlines()
    assert md[0] == "| stage | 4xx | 5xx | none |"
    rows = {line.split(" | ")[0].lstrip("| "): line for line in md[2:]}
    assert list(rows) == [s.value for s in Stage]
    for (stage, cls), action in RULES.items():
        cells = [c.strip() for c in rows[stage.value].strip("|").split("|")]
        assert cells[1 + list(ReplyClass).index(cls)] == action.value


@pytest.mark.parametrize("stage,code,action", [
    (Stage.GREETING, None, Action.NEXT_MX),     # connect failure
    (Stage.GREETING, 554, Action.NEXT_MX),
    (Stage.MAIL, 451, Action.NEXT_MX),
    (Stage.MAIL, 550, Action.BOUNCE),
    (Stage.RCPT, 450, Action.DEFER),
    (Stage.RCPT, 550, Action.BOUNCE),
    (Stage.DATA, 452, Action.NEXT_MX),
    (Stage.DATA, 554, Action.BOUNCE),
    (Stage.DATA, None, Action.NEXT_MX),         # lost connection
])
def test_rules_of_rfc5321_fallback(stage, code, action):
    assert action_for(stage, code) is action


def test_reply_class():
    assert [reply_class(c) for c in (None, 250, 421, 499, 500, 554)] == [
        ReplyClass.NONE, ReplyClass.TRANSIENT, ReplyClass.TRANSIENT, ReplyClass.TRANSIENT,
        ReplyClass.PERMANENT, ReplyClass.PERMANENT]


def test_apply_rule_moves_defers_or_bounces():
    dest = Destination("mx.b.example", "192.0.2.2", 25, 10)
    assert apply_rule(Action.NEXT_MX, ["a", "b"], 451, "x", dest) == ([], ["a", "b"])
    done, moved = apply_rule(Action.DEFER, ["a"], 450, "4.2.0 greylisted", dest)
    assert moved == [] and [(o.rcpt, o.status, o.code, o.dest_host) for o in done] == [
        ("a", DEFERRED, 450, "mx.b.example")]
    done, _ = apply_rule(Action.BOUNCE, ["a", "b"], 550, "5.7.1 no", dest)
    assert [o.status for o in done] == [BOUNCED, BOUNCED]
