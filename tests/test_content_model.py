"""The traffic content model (sim/actors/generate.py): each kind hits what
it claims with the built-in scanner and scorer, deterministically."""
from __future__ import annotations

import random

import pytest

from mta.filters.levels import SpamSettings
from mta.filters.spam import GTUBE, BuiltinScorer
from mta.filters.virus import EICAR, BuiltinScanner, Status
from sim.actors import generate as g
from sim.scenario.traffic import CONTENT_KINDS, Content

ENV = dict(mail_from="s@sender.example", rcpts=["a@c.example"], size=3000,
           msgid="m1@sender.example", t=10.0, subject="hello")


def build(kind, seed=1, content=Content()):
    return g.build_content(kind, random.Random(seed), content, **ENV)


def test_test_strings_are_the_scanners_own():
    assert g._EICAR == EICAR and g._GTUBE == GTUBE


@pytest.mark.parametrize("kind,level,virus", [
    ("ham", "none", "clean"), ("spam_low", "low", "clean"), ("spam_med", "med", "clean"),
    ("spam_high", "high", "clean"), ("gtube", "high", "clean"), ("eicar", "none", "infected"),
    ("large", "none", "clean")])
def test_each_kind_hits_what_it_claims(kind, level, virus):
    settings = SpamSettings(enabled=True)
    for seed in (1, 2, 3, 4):           # both EICAR forms (base64 and zip)
        data = build(kind, seed)
        assert BuiltinScanner().scan_sync(data).status is Status(virus)
        assert settings.decide(BuiltinScorer().score_sync(data)).level.value == level


def test_large_attachment_has_its_size_and_eicar_comes_in_both_forms():
    data = build("large", content=Content(large=1, large_size=200_000))
    assert 200_000 * 4 / 3 < len(data) < 200_000 * 4 / 3 * 1.1
    forms = {b"invoice.zip" in build("eicar", seed) for seed in range(10)}
    assert forms == {True, False}


def test_draws_follow_the_weights_and_the_seed():
    c = Content(ham=0, eicar=1, gtube=3)
    kinds = [g.draw_content(random.Random(7), c) for _ in range(1)]
    rng = random.Random(7)
    seq = [g.draw_content(rng, c) for _ in range(400)]
    rng2 = random.Random(7)
    assert seq == [g.draw_content(rng2, c) for _ in range(400)] and kinds[0] == seq[0]
    assert set(seq) == {"eicar", "gtube"} and 250 < seq.count("gtube") < 350
    state = random.Random(5)
    before = state.getstate()
    assert g.draw_content(state, None) == "ham" and state.getstate() == before   # no draw


def test_a_content_model_with_no_weight_is_refused():
    with pytest.raises(ValueError, match="weight above zero"):
        Content(ham=0)
    assert set(CONTENT_KINDS) >= {"ham", "eicar", "gtube", "large"}
