"""The scenario format: good files load, every kind of bad file gets one
clear message naming the file, the line, the key path and what was expected."""
import json
import re
from pathlib import Path

import pytest

from sim.scenario.loader import ScenarioError, format_path, load_scenario, load_text
from sim.scenario.schema import CROSS_CUTTING, GUARANTEE_IDS, Scenario

ROOT = Path(__file__).resolve().parent.parent

FULL = """
name: everything
description: one of each feature
seed: 42
duration: 3d
hosts:
  - name: mx1.example.net
    address: 192.0.2.10
    link: {latency: 20ms, bandwidth: 2Mbit, down_connect: refuse,
           schedule: {kind: outages, outages: [{start: 1h, for: 1d}]}}
  - name: mx2.example.net
    address: 192.0.2.20
  - name: dialup.customer.example
    address: 198.51.100.5
    link:
      bandwidth: 56kbit
      down_open: blackhole
      schedule: {kind: dialup, up: 15m, every: 4h, start: 30m, jitter: 10m}
  - name: flaky.example
    address: 198.51.100.6
    link: {schedule: {kind: random, mean_up: 2h, mean_down: 6h, initially: down}}
  - name: window.example
    address: 198.51.100.7
    link: {schedule: {kind: intervals, up: [{start: 0, end: 1h}, {start: 2d, end: 2d1h}]}}
  - name: home.isp.example
    address: 203.0.113.9
    access: {port25: {intercepted_by: smtp.isp.example}}
  - name: smtp.isp.example
    address: 203.0.113.25
  - name: blocked.isp.example
    address: 203.0.113.10
    access: {port25: blocked}
  - name: sender.example.org
    address: 192.0.2.99
  - name: bot.example
    address: 198.18.0.66
dns:
  latency: 5ms
  outages: [{start: 2d, end: 2d30m, mode: servfail}]
  zones: |
    $ORIGIN example.net.
    @ 3600 IN MX 10 mx1.example.net.
    @ 3600 IN MX 20 mx2.example.net.
    mx1 A 192.0.2.10
    mx2 A 192.0.2.20
    $ORIGIN flaky.example.
    @ A 198.51.100.6
roles:
  - role: primary-mx
    host: mx1.example.net
    local_domains: example.net
    valid_recipients: [alice@example.net]
    blocklist: 198.18.0.0/15
    dnsbl: [zen.dnsbl.example, {zone: relays.example, fail: closed, codes: [127.0.0.2]}]
    size_limit: 30MB
  - role: secondary-mx
    host: mx2.example.net
    relay_domains: [example.net]
    retry: {preset: exim, lifetimes: {example.net: 5d}}
    routes: {example.net: "[mx1.example.net]"}
  - role: queueing-server
    host: smtp.isp.example
    relay_domains: [customer.example]
    etrn: {allowed: 198.51.100.0/24}
    finger: {}
    probe: {interval: 30m}
  - role: relay
    host: window.example
    recipient_limit: {limit: 30, behaviour: documented}
    auth: {users: {bob: secret}}
    pop_before_smtp: {window: 90m, users: {bob: secret}, refuse_at: rcpt}
    ports: [25, 2525]
  - role: smart-host
    host: flaky.example
    trusted_networks: 198.51.100.0/24
  - role: smtp-feed
    host: blocked.isp.example
    client_domains: feed.example
    spam: {enabled: true, actions: {low: tag}}
  - role: isp-outbound
    host: home.isp.example
    trusted_networks: 203.0.113.0/24
    refuse_servers: 203.0.113.9
  - role: customer-server
    host: dialup.customer.example
    local_domains: customer.example
    smart_host: flaky.example
    valid_recipients: [bob@customer.example]
    allow_list: [192.0.2.20, 127.0.0.1]
traffic:
  - kind: sender
    host: sender.example.org
    rate: 20/h
    daily_pattern: [1,1,1,1,1,1,2,4,6,6,6,6,5,6,6,6,5,4,3,2,2,1,1,1]
    size: {dist: lognormal, median: 4KB, sigma: 1.2, max: 10MB}
    recipients: {dist: choice, values: [1, 2, 5], weights: [8, 1, 1]}
    retry: sendmail
    from: carol@example.org
    to: [alice@example.net, dave@customer.example]
  - kind: spammer
    host: bot.example
    rate: 1/m
    arrivals: fixed
    from: [x@spam.example]
    to: [alice@example.net]
    relay_probe: {targets: [mx1.example.net, mx2.example.net], every: 6h}
  - kind: dialup-customer
    host: dialup.customer.example
    domains: customer.example
    on_connect: etrn
    exchangers: [smtp.isp.example]
expectations:
  - {guarantee: conservation}
  - {guarantee: retry-discipline}
  - {guarantee: bounce-dsn}
  - {guarantee: mx-order}
  - {guarantee: mx-fallback, params: {within: 1h}}
  - {guarantee: dialup-primary-loses-mail, expect: violated, why: documented warning}
"""


#: Every setting of the full example has a component that runs it now.
RUNNABLE = FULL


def test_settings_without_a_component_are_errors_at_their_key(monkeypatch):
    from sim import convert
    load_text(FULL, "full.yaml")      # the feed's chain and the relay's stages run
    monkeypatch.setitem(convert.NOT_WIRED, "pop_before_smtp", "a component under test")
    with pytest.raises(ScenarioError) as info:
        load_text(FULL, "full.yaml")
    found = {(p.path, p.line) for p in info.value.problems}
    assert found == {("roles[3].pop_before_smtp", 71)}
    assert all("which mxsim does not run yet" in p.message for p in info.value.problems)


def test_full_example_loads_with_units_and_shorthands():
    sc = load_text(RUNNABLE, "full.yaml")
    assert sc.duration == 3 * 86400
    mx1 = sc.host("mx1.example.net")
    assert mx1.link.latency == pytest.approx(0.02)
    assert mx1.link.bandwidth == 250_000
    assert mx1.link.schedule.outages[0].start == 3600
    assert mx1.link.schedule.outages[0].end == 3600 + 86400  # ``for`` means length
    dial = sc.host("dialup.customer.example").link.schedule
    assert (dial.kind, dial.up, dial.every, dial.jitter) == ("dialup", 900, 14400, 600)
    assert sc.roles[0].local_domains == ["example.net"]          # one item, not a list
    assert sc.roles[0].dnsbl[0].zone == "zen.dnsbl.example"      # zone shorthand
    assert sc.roles[0].dnsbl[1].fail == "closed"
    assert sc.roles[0].size_limit == 30_000_000
    assert sc.roles[1].retry.preset == "exim"
    assert sc.roles[1].retry.lifetimes == {"example.net": 5 * 86400}
    assert sc.roles[2].etrn.allowed == ["198.51.100.0/24"]
    assert sc.roles[3].recipient_limit.behaviour == "documented"
    assert sc.roles[5].retry.lifetime == 2 * 86400               # the feed's 2 days
    assert sc.traffic[0].rate == pytest.approx(20 / 3600)
    assert sc.traffic[0].retry.preset == "sendmail"
    assert sc.traffic[0].from_ == ["carol@example.org"]
    assert sc.traffic[1].target == "lowest-mx"
    assert sc.expectations[5].expect == "violated"
    assert sc.missing_cross_cutting() == []


def test_schedule_and_limit_shorthands():
    sc = load_text(MINIMAL.replace("link: {}", "link: {schedule: always}"), "x.yaml")
    assert sc.hosts[0].link.schedule.kind == "always"
    text = MINIMAL + "roles:\n  - {role: relay, host: a.example, recipient_limit: 30}\n"
    assert load_text(text).roles[0].recipient_limit.limit == 30
    assert load_text(text).roles[0].recipient_limit.behaviour == "conformant"


MINIMAL = """name: minimal
duration: 1h
hosts:
  - name: a.example
    address: 192.0.2.1
    link: {}
  - name: b.example
    address: 192.0.2.2
"""


def problems(text, name="bad.yaml"):
    with pytest.raises(ScenarioError) as info:
        load_text(text, name)
    out = [str(p) for p in info.value.problems]
    assert all("Traceback" not in p for p in out)
    return out


def one_problem(text):
    out = problems(text)
    assert len(out) == 1, out
    return out[0]


def test_bad_duration_names_file_line_path_and_expectation():
    text = MINIMAL.replace("link: {}", "link: {schedule: {kind: dialup, up: 15m, every: soon}}")
    msg = one_problem(text)
    assert msg.startswith("bad.yaml:6:")
    assert "hosts[0].link.schedule.every: expected a duration such as 90m" in msg
    assert "got 'soon'" in msg


def test_unknown_key_is_an_error_with_a_suggestion():
    msg = one_problem(MINIMAL.replace("address: 192.0.2.2", "address: 192.0.2.2\n    adress: x"))
    assert "bad.yaml:9:" in msg and "hosts[1].adress: unknown key (did you mean 'address'?)" in msg
    assert "expected one of: name, address, link, access, description" in msg


def test_unknown_key_inside_a_tagged_union_lists_that_kinds_keys():
    text = MINIMAL.replace("link: {}", "link: {schedule: {kind: dialup, up: 1h, every: 2h, "
                                        "offset: 1h}}")
    msg = one_problem(text)
    assert "hosts[0].link.schedule.offset: unknown key" in msg
    assert "expected one of: kind, up, every, start, jitter" in msg


def test_unknown_top_level_key():
    msg = one_problem(MINIMAL + "hostz: []\n")
    assert "hostz: unknown key (did you mean 'hosts'?)" in msg


def test_wrong_kind_suggests_the_right_one():
    msg = one_problem(MINIMAL.replace("link: {}", "link: {schedule: {kind: dialpu}}"))
    assert "hosts[0].link.schedule: expected 'kind' to be one of" in msg
    assert "did you mean 'dialup'" in msg


def test_missing_required_key():
    msg = one_problem(MINIMAL.replace("duration: 1h\n", ""))
    assert msg == "bad.yaml:1:1: required key 'duration' is missing"
    msg = one_problem(MINIMAL + "roles:\n  - {role: primary-mx, host: a.example}\n")
    assert "roles[0]: required key 'local_domains' is missing" in msg


def test_yaml_syntax_error_has_line_and_column():
    msg = one_problem(MINIMAL.replace("link: {}", "link: {schedule: [always}"))
    assert re.match(r"bad\.yaml:6:\d+: YAML syntax error: ", msg), msg


def test_duplicate_keys_are_errors():
    msg = one_problem(MINIMAL.replace("address: 192.0.2.1", "address: 192.0.2.1\n    address: x"))
    assert msg == "bad.yaml:6:5: hosts[0].address: key given twice in the same mapping"


@pytest.mark.parametrize("text", ["", "- a\n", "just text\n"])
def test_not_a_mapping(text):
    assert "expected a mapping of scenario keys" in one_problem(text)


def test_cross_references_are_checked_all_at_once():
    text = MINIMAL.replace("192.0.2.2", "192.0.2.1") + """roles:
  - {role: primary-mx, host: c.example, local_domains: x.example}
traffic:
  - {kind: dialup-customer, host: b.example, domains: x.example, exchangers: [z.example]}
"""
    out = problems(text)
    assert len(out) == 3, out
    assert "hosts[1].address: expected a unique address, 192.0.2.1 is also hosts[0]" in out[0]
    assert "roles[0].host: expected the name of a host in hosts (a.example, b.example), " \
           "got 'c.example'" in out[1]
    assert "traffic[0].exchangers[0]:" in out[2]


def test_many_errors_are_all_reported():
    text = MINIMAL.replace("192.0.2.1", "300.1.1.1").replace("duration: 1h", "duration: -1h")
    out = problems(text)
    assert any("duration: expected a duration" in p for p in out)
    assert any("hosts[0].address: expected an IPv4 address" in p for p in out)


@pytest.mark.parametrize("fragment, path, expected", [
    ("{kind: outages, outages: [{start: 2h, end: 1h}]}", "hosts[0].link.schedule.outages[0]",
     "expected end after start"),
    ("{kind: dialup, up: 4h, every: 4h}", "hosts[0].link.schedule",
     "expected 'every' longer than 'up'"),
    ("{kind: random, mean_up: 0, mean_down: 1h}", "hosts[0].link.schedule",
     "expected 'mean_up' and 'mean_down' above zero"),
])
def test_schedule_consistency(fragment, path, expected):
    msg = one_problem(MINIMAL.replace("link: {}", f"link: {{schedule: {fragment}}}"))
    assert f"{path}: {expected}" in msg


@pytest.mark.parametrize("actor, path, expected", [
    ("{kind: sender, host: a.example, rate: lots, from: x@y.example, to: z@y.example}",
     "traffic[0].rate", "expected a rate such as 10/h"),
    ("{kind: sender, host: a.example, rate: 1/h, from: nobody, to: z@y.example}",
     "traffic[0].from", "expected a mail address"),
    ("{kind: sender, host: a.example, rate: 1/h, from: x@y.example, to: z@y.example, "
     "size: {dist: normal}}", "traffic[0].size", "expected 'dist' to be one of"),
    ("{kind: sender, host: a.example, rate: 1/h, from: x@y.example, to: z@y.example, "
     "recipients: {dist: choice, values: [1, 2], weights: [1]}}", "traffic[0].recipients",
     "expected 2 weights"),
    ("{kind: sender, host: a.example, rate: 1/h, from: x@y.example, to: z@y.example, "
     "daily_pattern: [1, 2]}", "traffic[0].daily_pattern", "at least 24"),
    ("{kind: spammer, host: a.example}", "traffic[0]", "expected a 'rate' or a 'relay_probe'"),
    ("{kind: dialup-customer, host: a.example, domains: x.example, on_connect: ping}",
     "traffic[0].on_connect", "expected 'etrn', 'finger' or 'wait'"),
])
def test_actor_errors(actor, path, expected):
    msg = one_problem(MINIMAL + f"traffic:\n  - {actor}\n")
    assert f"{path}: " in msg and expected in msg, msg


def test_expectation_errors():
    out = problems(MINIMAL + "expectations:\n  - {guarantee: mx-fallbak, expect: maybe}\n")
    assert "expectations[0].guarantee:" in out[0] and "did you mean 'mx-fallback'" in out[0]
    assert "expectations[0].expect: expected 'holds' or 'violated', got 'maybe'" in out[1]


def test_missing_file():
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario("/nonexistent/x.yaml")


def test_cross_cutting_warning_and_waive():
    sc = load_text(MINIMAL)
    assert sc.missing_cross_cutting() == list(CROSS_CUTTING)
    sc = load_text(MINIMAL + "waive: {mx-order: no MX lookups here}\n")
    assert "mx-order" not in sc.missing_cross_cutting()


def test_format_path():
    assert format_path(("hosts", 2, "link", "schedule", "every")) == "hosts[2].link.schedule.every"
    assert format_path(()) == ""


def test_json_schema_covers_every_section_and_shorthand():
    schema = Scenario.model_json_schema()
    json.dumps(schema)
    assert set(schema["required"]) == {"name", "duration", "hosts"}
    assert schema["additionalProperties"] is False
    defs = schema["$defs"]
    for name in ("Host", "Link", "DialupSchedule", "PrimaryMx", "Sender", "Spammer",
                 "DialupCustomer", "Expectation"):
        assert defs[name]["additionalProperties"] is False, name
    window = defs["Window"]
    assert "for" in window["properties"] and window["required"] == ["start"]
    assert {"const": "always", "type": "string"} in defs["Link"]["properties"]["schedule"]["anyOf"]


def test_guarantee_ids_match_the_catalogue():
    ids = re.findall(r"^\| `([a-z0-9-]+)` \|", (ROOT / "docs" / "catalogue.md").read_text(),
                     flags=re.M)
    assert tuple(ids) == GUARANTEE_IDS


def test_the_catalogue_copy_has_the_ids_of_the_shared_one():
    # The project's copy keeps the IDs of the catalogue it was made from,
    # which sits in shared/ beside the checkout (there in CI too).
    shared = ROOT.parent / "shared" / "GUARANTEES.md"
    if not shared.exists():
        pytest.skip(f"no shared catalogue beside the checkout ({shared})")
    pattern = r"^\| `([a-z0-9-]+)` \|"
    assert re.findall(pattern, shared.read_text(), flags=re.M) == \
        re.findall(pattern, (ROOT / "docs" / "catalogue.md").read_text(), flags=re.M)


def test_scenario_library_is_valid():
    files = sorted((ROOT / "scenarios").glob("*.yaml"))
    assert len(files) >= 10, "the scenario library is missing"
    for path in files:
        sc = load_scenario(path)
        assert sc.name == path.stem, f"{path.name}: name should match the file name"


def test_settings_the_components_refuse_are_validation_errors():
    text = MINIMAL + """roles:
  - {role: customer-server, host: a.example, local_domains: x.example,
     valid_recipients: bob@y.example}
  - {role: primary-mx, host: b.example, local_domains: x.example, size_limit: 1KB}
"""
    out = problems(text)
    assert len(out) == 2
    assert out[0].startswith("bad.yaml:10:5: roles[0]: the customer-server component refuses")
    assert "bob@y.example is not in local_domains" in out[0]
    assert "at least 64K must be accepted" in out[1]


def test_one_role_per_host_and_port():
    text = MINIMAL + """roles:
  - {role: primary-mx, host: a.example, local_domains: x.example}
  - {role: smart-host, host: a.example, trusted_networks: 192.0.2.0/24}
"""
    msg = one_problem(text)
    assert "roles[1].ports: expected one role per host and port, roles[0] already listens " \
           "on a.example port 25" in msg


# -- robustness: whatever the file says, the answer is a result or problems --------

import yaml  # noqa: E402
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**9),
                     st.floats(allow_nan=True, allow_infinity=True),
                     st.text(max_size=12), st.sampled_from(["2d", "90m", "always", "dialup",
                                                            "192.0.2.1", "x@y.example"]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


_FULL_DATA = yaml.safe_load(FULL)
_ALL_PATHS = [p for p in _paths(_FULL_DATA) if p]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_ALL_PATHS), _VALUES)
def test_any_mutation_gives_problems_never_a_crash(path, value):
    import copy
    data = copy.deepcopy(_FULL_DATA)
    node = data
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    text = yaml.safe_dump(data)
    try:
        load_text(text, "fuzz.yaml")
    except ScenarioError as exc:
        assert exc.problems
        for p in exc.problems:
            assert str(p).startswith("fuzz.yaml") and "Traceback" not in str(p)
