"""RFC 3464 bounces: the DSN's structure, and who gets one.

A DSN is checked with the standard library's parser (it must read as a
``multipart/report`` with a ``message/delivery-status`` part), and the
end-to-end tests deliver it over SMTP to the sender's own MX.
"""
from __future__ import annotations

import email
import email.policy

from mta import events as ev
from mta.delivery.dsn import RecipientStatus, build_dsn, status_of
from mta.queue.policy import QueueConfig
from sim.world.core import World
from helpers.queue import FixedSchedule, Recorder, queue_for, serve, zones

ORIGINAL = (b"From: Alice <alice@a.example>\r\nTo: bob@b.example\r\nSubject: lunch?\r\n"
            b"Message-ID: <orig-1@a.example>\r\n\r\nsecret body text\r\n")


def parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.compat32)


def test_dsn_is_a_multipart_report_with_delivery_status():
    data = build_dsn(reporting_mta="mx.a.example", dsn_id="mx.a.example/m9", message_id="m9@mx.a.example",
                     to="alice@a.example", action="failed",
                     recipients=[RecipientStatus("bob@b.example", 550, "5.1.1 no such user", "mx.b.example"),
                                 RecipientStatus("carol@b.example", 421, "4.4.2 timed out", "")],
                     original=ORIGINAL, arrival=0.0, now=3600.0)
    msg = parse(data)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["To"] == "<alice@a.example>" and "MAILER-DAEMON" in msg["From"]
    assert msg["Message-ID"] == "<m9@mx.a.example>" and msg["Auto-Submitted"] == "auto-replied"
    parts = msg.get_payload()
    assert [p.get_content_type() for p in parts] == ["text/plain", "message/delivery-status",
                                                     "text/rfc822-headers"]
    # message/delivery-status: per-message block, then one block per recipient.
    blocks = parts[1].get_payload()
    assert blocks[0]["Reporting-MTA"] == "dns; mx.a.example"
    assert [b["Final-Recipient"] for b in blocks[1:]] == ["rfc822; bob@b.example", "rfc822; carol@b.example"]
    assert [b["Action"] for b in blocks[1:]] == ["failed", "failed"]
    assert [b["Status"] for b in blocks[1:]] == ["5.1.1", "4.4.2"]
    assert blocks[1]["Diagnostic-Code"] == "smtp; 550 5.1.1 no such user"
    assert blocks[1]["Remote-MTA"] == "dns; mx.b.example" and blocks[2]["Remote-MTA"] is None
    headers = parts[2].get_payload()
    assert "Subject: lunch?" in headers and "secret body text" not in headers
    # Deterministic: the same inputs give the same bytes.
    assert data == build_dsn(reporting_mta="mx.a.example", dsn_id="mx.a.example/m9",
                             message_id="m9@mx.a.example", to="alice@a.example", action="failed",
                             recipients=[RecipientStatus("bob@b.example", 550, "5.1.1 no such user", "mx.b.example"),
                                         RecipientStatus("carol@b.example", 421, "4.4.2 timed out", "")],
                             original=ORIGINAL, arrival=0.0, now=3600.0)


def test_status_from_enhanced_code_or_reply_class():
    assert status_of(550, "5.7.1 relay denied") == "5.7.1"
    assert status_of(550, "mailbox unavailable") == "5.0.0"
    assert status_of(451, "try later") == "4.0.0"


def build_world():
    zone = {"b.example": ["@ MX 10 mx", "mx A 192.0.2.2"],
            "a.example": ["@ MX 10 mx", "mx A 192.0.2.3"]}
    world = World(seed=2)
    relay = world.add_host("relay.isp.example", "192.0.2.5")
    b = world.add_host("mx.b.example", "192.0.2.2")
    a = world.add_host("mx.a.example", "192.0.2.3")
    world.set_zones(zones(zone))
    brec = Recorder("b", rcpt_replies={"nobody@b.example": "550 5.1.1 <nobody@b.example>: User unknown"})
    arec = Recorder("a")
    world.run_until_complete(b, serve(brec, b.name))
    world.run_until_complete(a, serve(arec, a.name))
    q = queue_for(relay, config=QueueConfig(retry=FixedSchedule()))
    world.run_until_complete(relay, q.start())
    return world, relay, q, arec, brec


def test_bounce_goes_to_the_real_sender_over_smtp_from_null_sender():
    world, relay, q, arec, brec = build_world()
    msg = world.run_until_complete(relay, q.submit("alice@a.example", ["bob@b.example", "nobody@b.example"],
                                                   ORIGINAL))
    world.run(until=60)
    assert brec.rcpts() == ["bob@b.example"]
    bounced = [e for e in world.events if isinstance(e, ev.Bounced)]
    assert [(b.msg, b.rcpt, b.code, b.reason) for b in bounced] == [(msg, "nobody@b.example", 550, "rejected")]
    created = [e for e in world.events if isinstance(e, ev.DsnCreated)]
    assert len(created) == 1 and created[0].trace == bounced[0].dsn_trace
    assert created[0].about_trace == "orig-1@a.example" and created[0].mail_from == ""
    # The DSN was queued and delivered like any mail: from <>, to the sender.
    assert len(arec.messages) == 1
    mail_from, rcpts, data = arec.messages[0]
    assert mail_from == "" and rcpts == ["alice@a.example"]
    report = parse(data)
    assert report.get_content_type() == "multipart/report"
    status = report.get_payload()[1].get_payload()
    assert status[1]["Final-Recipient"] == "rfc822; nobody@b.example"
    assert status[1]["Status"] == "5.1.1" and status[1]["Remote-MTA"] == "dns; mx.b.example"
    relayed = [e for e in world.events if isinstance(e, ev.Relayed) and e.trace == created[0].trace]
    assert len(relayed) == 1 and relayed[0].dest_host == "mx.a.example"


def test_no_dsn_for_null_sender_and_no_dsn_about_a_failed_dsn():
    world, relay, q, arec, brec = build_world()
    world.run_until_complete(relay, q.submit("", ["nobody@b.example"], ORIGINAL))
    world.run(until=60)
    bounced = [e for e in world.events if isinstance(e, ev.Bounced)]
    assert len(bounced) == 1 and bounced[0].dsn_trace == ""
    assert not [e for e in world.events if isinstance(e, ev.DsnCreated)]
    assert not arec.messages and q.state.pending() == 0


def test_one_dsn_per_give_up_covers_every_recipient_failed_together():
    world, relay, q, arec, brec = build_world()
    brec.rcpt_replies["x@b.example"] = "550 5.1.1 unknown"
    world.run_until_complete(relay, q.submit("alice@a.example", ["x@b.example", "nobody@b.example"], ORIGINAL))
    world.run(until=60)
    created = [e for e in world.events if isinstance(e, ev.DsnCreated)]
    assert len(created) == 1 and created[0].rcpts == ("x@b.example", "nobody@b.example")
    assert len(arec.messages) == 1
