"""Validation catches scenarios that cannot work as written (errors) and
those that can but probably are not what was meant (warnings), each placed
at its line in the file."""
from __future__ import annotations

import pytest

from helpers.scenarios import SMALL
from sim.scenario.loader import Problem, ScenarioError, load_text


def warnings_of(text: str) -> list[Problem]:
    found: list[Problem] = []
    load_text(text, "x.yaml", warnings=found)
    return found


def errors_of(text: str) -> list[Problem]:
    with pytest.raises(ScenarioError) as info:
        load_text(text, "x.yaml")
    return info.value.problems


def with_route(nexthop: str) -> str:
    return SMALL.replace(
        "  - {role: secondary-mx, host: mx2.example.net, relay_domains: example.net}",
        "  - {role: secondary-mx, host: mx2.example.net, relay_domains: example.net,\n"
        f"     routes: {{example.net: '{nexthop}'}}}}")


def test_the_small_scenario_has_nothing_to_say():
    assert warnings_of(SMALL) == []


def test_a_route_to_a_host_that_does_not_exist_is_an_error():
    [p] = errors_of(with_route("[mx9.example.net]"))
    assert p.path == "roles[1].routes.example.net" and p.line == 24
    assert "mx9.example.net has no A record in dns.zones" in p.message


def test_a_route_to_a_port_nobody_listens_on_is_a_warning():
    [w] = warnings_of(with_route("[mx1.example.net]:2525"))
    assert w.path == "roles[1].routes.example.net"
    assert "nothing listens on mx1.example.net port 2525 (its SMTP ports: 25)" in w.message
    assert warnings_of(with_route("[mx1.example.net]:25")) == []


def test_a_smart_host_without_an_address_is_an_error():
    text = SMALL.replace("rate: 8/h, stop: 3h,", "rate: 8/h, stop: 3h, smart_host: mx1.example.org,")
    text = text.replace("  - {name: mail.example.org, address: 198.51.100.25}",
                        "  - {name: mail.example.org, address: 198.51.100.25}\n"
                        "  - {name: mx1.example.org, address: 198.51.100.26}")
    [p] = errors_of(text)
    assert p.path == "traffic[0].smart_host" and "mx1.example.org has no A record" in p.message


def test_an_mx_without_an_address_is_a_warning_at_its_zone_line():
    [w] = warnings_of(SMALL.replace("    mx2   A  192.0.2.20\n", ""))
    assert w.path == "dns.zones" and w.line == 15 and w.column == 5
    assert "MX of example.net is mx2.example.net, which has no A record" in w.message


def test_an_address_no_host_has_is_a_warning_but_block_list_answers_are_not():
    text = SMALL.replace("    mx2   A  192.0.2.20\n",
                         "    mx2   A  192.0.2.21\n    $ORIGIN dnsbl.example.\n"
                         "    2.0.0.127 A 127.0.0.2\n")
    [w] = warnings_of(text)
    assert w.line == 17 and "mx2.example.net has address 192.0.2.21, which no host has" in w.message


def test_more_recipients_than_the_pool_has_is_a_warning():
    text = SMALL.replace("from: carol@example.org, to: [alice@example.net, bob@example.net]}",
                         "from: carol@example.org, to: alice@example.net, recipients: 3}")
    [w] = warnings_of(text)
    assert w.path == "traffic[0].recipients"
    assert "up to 3 distinct recipients per message, but 'to' has 1 address" in w.message
    templated = text.replace("to: alice@example.net,", "to: [alice@example.net, 'u{n}@example.net'],")
    assert warnings_of(templated) == []


def test_a_zone_mistake_is_named_at_its_line_in_plain_words():
    [p] = errors_of(SMALL.replace("    mx2   A  192.0.2.20\n", "    mx2   A  198.51.100\n"))
    assert str(p).startswith("x.yaml:17:5: dns.zones: '198.51.100' is not an IPv4 address")
    [p] = errors_of(SMALL.replace("    @     MX 10 mx1.example.net.\n", "    @     MX mx1.example.net.\n"))
    assert p.line == 14 and "an MX record needs a preference and a host name" in p.message
    assert "<string>" not in p.message


# --------------------------------------------------------------------------
# Check parameters, validated with the scenario (through the pipeline)
# --------------------------------------------------------------------------

def test_a_misspelled_check_parameter_is_an_error_at_its_line():
    from sim.pipeline import load_string

    text = SMALL.replace("    params: {primary: mx1.example.net, secondary: mx2.example.net}",
                         "    params: {primray: mx1.example.net, secondary: mx2.example.net}")
    with pytest.raises(ScenarioError) as info:
        load_string(text, "x.yaml")
    found = {p.path: (p.line, p.message) for p in info.value.problems}
    assert found["expectations[0].params.primray"][0] == 29
    assert "unknown key; did you mean 'primary'?" in found["expectations[0].params.primray"][1]
    assert "required" in found["expectations[0].params.primary"][1]
    load_text(text, "x.yaml")          # the loader alone does not know the checks


def test_a_check_parameter_naming_no_host_of_the_scenario_is_an_error():
    from sim.pipeline import load_string

    text = SMALL.replace("secondary: mx2.example.net}", "secondary: mx3.example.net}")
    with pytest.raises(ScenarioError) as info:
        load_string(text, "x.yaml")
    [p] = info.value.problems
    assert p.path.startswith("expectations[0].params")
    assert "mx3.example.net" in p.message and "mx2.example.net" in p.message
