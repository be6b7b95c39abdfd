"""The feed's chain with real clamd and spamd, as a live feed would build it
(slow suite; needs ``apt-get install -y clamav-daemon spamassassin spamd``,
and fails naming that line without them)."""
from __future__ import annotations

import asyncio

import pytest

from mta.filters.levels import SpamSettings
from mta.roles import SmtpFeed
from helpers import filter_daemons as daemons
from helpers.filter_corpus import GTUBE_MAIL, HAM, VIRUS_CORPUS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live_feed(tmp_path_factory):
    with daemons.clamd(tmp_path_factory.mktemp("clamd")) as clamd, \
            daemons.spamd(tmp_path_factory.mktemp("spamd")) as spamd:
        role = SmtpFeed(hostname="feed.provider.example", relay_domains=("c.example",),
                        virus_scanner="clamd", clamd_address=f"127.0.0.1:{clamd.port}",
                        spam_scorer="spamd", spamd_address=f"127.0.0.1:{spamd.port}",
                        spam=SpamSettings(enabled=True), modelled_costs=False)
        yield role.build_filters()


def run(chain, message):
    return asyncio.run(chain.run(message))


def test_live_chain_deletes_viruses_found_by_clamd(live_feed):
    infected = [name for name, (_, is_virus) in sorted(VIRUS_CORPUS.items()) if is_virus]
    assert infected
    for name in infected:
        r = run(live_feed, VIRUS_CORPUS[name][0])
        assert r.discard is not None and r.discard[0] == "virus", name
        assert r.verdicts[0].scanner == "clamd" and "Eicar" in r.discard[1]


def test_live_chain_classifies_with_spamd(live_feed):
    gtube = run(live_feed, GTUBE_MAIL)
    assert gtube.discard is not None and gtube.discard[0] == "spam"       # high: delete
    assert gtube.verdicts[-1].level == "high" and gtube.verdicts[-1].scanner == "spamd"
    ham = run(live_feed, HAM)
    assert ham.discard is None and not ham.tempfail
    assert ham.verdicts[-1].level in ("none", "low")
    if ham.verdicts[-1].level == "none":
        assert ham.body == HAM
