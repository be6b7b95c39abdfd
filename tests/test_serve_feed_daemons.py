"""A served SMTP feed behind real clamd and spamd (``mxsim serve --clamd
--spamd``): EICAR is deleted, GTUBE tagged, clean mail delivered unchanged,
all checked on the client's server (an aiosmtpd sink) by content, and the
live log judged by ``mxsim report``.  Bad input: a daemon that does not
answer, an option without a feed or its spam check: exit 2 before anything listens or is written.

The slow tests need ``apt-get install -y clamav-daemon spamassassin spamd``
and fail naming that line without them."""
from __future__ import annotations

import json
import smtplib
import socket
import subprocess
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from helpers import filter_daemons as daemons
from helpers.filter_corpus import GTUBE_MAIL, HAM, VIRUS_CORPUS
from helpers.serve import MXSIM, start_serve
from sim.cli import main

FEED = "feed.provider.example"
CLIENT = "bob@client.example"


def scenario(tmp_path: Path, sink_port: int = 9, spam: bool = True) -> Path:
    path = tmp_path / "feed.yaml"
    path.write_text(f"""\
name: live-feed
description: a feed scanning with clamd and scoring with spamd, served live
seed: 1
duration: 1h
hosts:
  - {{name: {FEED}, address: 192.0.2.80}}
roles:
  - role: smtp-feed
    host: {FEED}
    client_domains: client.example
    routes: {{client.example: "[127.0.0.1]:{sink_port}"}}
    greylisting: {{enabled: false}}
    spam:
      enabled: {"true" if spam else "false"}
      actions: {{low: none, med: none, high: subject}}
expectations:
  - guarantee: feed-virus-deleted
    params: {{feed: {FEED}}}
  - guarantee: feed-spam-levels
    params: {{feed: {FEED}, enabled: true, actions: {{low: none, med: none, high: subject}}}}
""")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """The client's mail server: keeps what it is given."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.original_content)
        return "250 OK"


@pytest.fixture(scope="module")
def scanners(tmp_path_factory):
    with daemons.clamd(tmp_path_factory.mktemp("clamd")) as clamd, \
            daemons.spamd(tmp_path_factory.mktemp("spamd")) as spamd:
        yield clamd, spamd


@pytest.fixture
def sink():
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port,
                            server_hostname="mail.client.example", ready_timeout=10)
    controller.start()
    handler.port = port
    yield handler
    controller.stop()


def body_of(data: bytes) -> bytes:
    """A delivered message without the Received headers put on top."""
    lines = data.split(b"\r\n")
    while lines and (lines[0].startswith(b"Received:") or lines[0][:1] in (b" ", b"\t")):
        lines.pop(0)
    return b"\r\n".join(lines)


@pytest.mark.slow
def test_served_feed_deletes_eicar_tags_gtube_delivers_clean(tmp_path, scanners, sink):
    clamd, spamd = scanners
    state = tmp_path / "state"
    served = start_serve(scenario(tmp_path, sink.port), FEED, state,
                         "--clamd", f"127.0.0.1:{clamd.port}", "--spamd", f"127.0.0.1:{spamd.port}")
    eicar = VIRUS_CORPUS["eicar-base64"][0]
    try:
        with smtplib.SMTP("127.0.0.1", served.port(), local_hostname="mta.sender.example") as c:
            for data in (eicar, GTUBE_MAIL, HAM):
                assert c.sendmail("alice@example.org", [CLIENT], data) == {}
        deadline = time.monotonic() + 120
        while len(sink.messages) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)                         # nothing else may follow (EICAR)
    finally:
        assert served.stop() == 0
    assert len(sink.messages) == 2, sink.messages
    by_subject = {body_of(m).split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0]: m
                  for m in sink.messages}
    assert set(by_subject) == {b"[SPAM: high] Lunch on Tuesday", b"Lunch on Tuesday"}
    tagged = body_of(by_subject[b"[SPAM: high] Lunch on Tuesday"])
    assert tagged == GTUBE_MAIL.replace(b"Subject: Lunch", b"Subject: [SPAM: high] Lunch")
    assert body_of(by_subject[b"Lunch on Tuesday"]) == HAM           # byte for byte
    assert not any(b"EICAR" in m or b"WDVPIVAlQEFQ" in m for m in sink.messages)

    events = [json.loads(l) for l in (state / "events.jsonl").read_text().splitlines()]
    verdicts = [e for e in events if e["kind"] == "filter_verdict"]
    assert {e["scanner"] for e in verdicts if e["stage"] == "virus"} == {"clamd"}
    assert {e["scanner"] for e in verdicts if e["stage"] == "spam"} == {"spamd"}
    assert [e["policy"] for e in events if e["kind"] == "discarded"] == ["virus"]
    out = subprocess.run([MXSIM, "report", str(state)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    verdict = json.loads((state / "verdict.json").read_text())
    status = {g["id"]: g["status"] for g in verdict["guarantees"]}
    assert status["feed-virus-deleted"] == "pass" and status["feed-spam-levels"] == "pass", \
        verdict["guarantees"]


def test_unreachable_clamd_exits_2_before_listening(tmp_path, capsys):
    state = tmp_path / "state"
    rc = main(["serve", str(scenario(tmp_path)), "--host", FEED, "--state", str(state),
               "--clamd", f"127.0.0.1:{free_port()}", "--spamd", f"127.0.0.1:{free_port()}"])
    err = capsys.readouterr()
    assert rc == 2
    assert "--clamd 127.0.0.1:" in err.err and "clamd does not answer PING" in err.err, err.err
    assert "listening" not in err.out and not state.exists()


def test_filter_options_need_a_feed(tmp_path, capsys):
    other = tmp_path / "mx.yaml"
    other.write_text("""\
name: mx
seed: 1
duration: 1h
hosts: [{name: mx.example.net, address: 192.0.2.10}]
roles: [{role: primary-mx, host: mx.example.net, local_domains: example.net}]
""")
    rc = main(["serve", str(other), "--host", "mx.example.net", "--spamd", "127.0.0.1:783"])
    assert rc == 2 and "--spamd: mx.example.net runs no smtp-feed role" in capsys.readouterr().err
    rc = main(["serve", str(scenario(tmp_path, spam=False)), "--host", FEED, "--spamd",
               "127.0.0.1:783", "--state", str(tmp_path / "s")])
    assert rc == 2 and f"--spamd: the spam check of {FEED}'s feed is off" in \
        capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    rc = main(["serve", str(other), "--host", "mx.example.net", "--clamd", "nowhere:3310"])
    assert rc == 2 and "--clamd 'nowhere:3310'" in capsys.readouterr().err
