"""Parity: the same unmodified component code (mta.smtp.basic) gives the same
SMTP transcript on real loopback sockets and on the simulated loop."""
from __future__ import annotations

import asyncio

from mta.smtp.basic import send_message, serve_sink
from sim.world.core import World

BODY = b"From: a@sender.example\r\nTo: b@mx.example\r\nSubject: parity\r\n\r\n.leading dot\r\nbody\r\n"
RCPTS = ["b@mx.example", "c@mx.example"]


def live_transcript():
    async def main():
        server, sink = await serve_sink("mx.example", 0, host="127.0.0.1")
        port = server.sockets[0].getsockname()[1]
        transcript = await send_message("127.0.0.1", port, "sender.example", "a@sender.example", RCPTS, BODY)
        server.close()
        await server.wait_closed()
        return transcript, sink.messages

    return asyncio.run(main())


def sim_transcript():
    world = World(seed=5)
    sender = world.add_host("sender.example", "192.0.2.1")
    mx = world.add_host("mx.example", "192.0.2.25")
    _, sink = world.run_until_complete(mx, serve_sink("mx.example", 25))
    transcript = world.run_until_complete(sender, send_message(
        "192.0.2.25", 25, "sender.example", "a@sender.example", RCPTS, BODY))
    return transcript, sink.messages


def test_transcripts_match_between_loopback_and_simulation():
    live, live_msgs = live_transcript()
    sim, sim_msgs = sim_transcript()
    assert [c for c, _, _ in sim] == ["CONNECT", "EHLO", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"]
    assert sim == live
    # What the server stored is the same too (apart from the peer address).
    assert [(m.mail_from, m.rcpts, m.data) for m in sim_msgs] == \
           [(m.mail_from, m.rcpts, m.data) for m in live_msgs]
    assert sim_msgs[0].peer == "192.0.2.1" and live_msgs[0].peer == "127.0.0.1"
