"""Small, fast scenarios shared by the runner, CLI and plugin tests (no tests here)."""

SMALL = """# a primary down for two hours, a secondary, one sender
name: small
seed: 5
duration: 4h
hosts:
  - name: mx1.example.net
    address: 192.0.2.10
    link: {schedule: {kind: outages, outages: [{start: 1h, end: 2h}]}}
  - {name: mx2.example.net, address: 192.0.2.20}
  - {name: mail.example.org, address: 198.51.100.25}
dns:
  zones: |
    $ORIGIN example.net.
    @     MX 10 mx1.example.net.
    @     MX 20 mx2.example.net.
    mx1   A  192.0.2.10
    mx2   A  192.0.2.20
    $ORIGIN example.org.
    @     MX 10 mail.example.org.
    mail  A  198.51.100.25
roles:
  - {role: primary-mx, host: mx1.example.net, local_domains: example.net}
  - {role: secondary-mx, host: mx2.example.net, relay_domains: example.net}
traffic:
  - {kind: sender, host: mail.example.org, rate: 8/h, stop: 3h,
     from: carol@example.org, to: [alice@example.net, bob@example.net]}
expectations:
  - guarantee: mx-fallback
    params: {primary: mx1.example.net, secondary: mx2.example.net}
  - guarantee: conservation
  - guarantee: retry-discipline
  - guarantee: mx-order
waive: {bounce-dsn: "every recipient exists and the primary comes back: nothing bounces"}
"""

# The same world, expecting the opposite of what happens: not met.
WRONG = SMALL.replace("name: small", "name: wrong").replace(
    "  - guarantee: mx-fallback\n", "  - guarantee: mx-fallback\n    expect: violated\n")

INVALID = SMALL.replace("name: small", "name: invalid").replace("rate: 8/h", "rate: often")


def write(tmp_path, name, text):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path

# A relay limited to 2 recipients the documented way: recipient 3 is lost,
# and conservation (expected to hold) fails with counterexamples.
LOSSY = """name: lossy
seed: 3
duration: 1h
hosts:
  - {name: relay.provider.example, address: 192.0.2.50}
  - {name: mailer.customer.example, address: 198.51.100.8}
  - {name: mx1.example.net, address: 192.0.2.10}
dns:
  zones: |
    $ORIGIN example.net.
    @     MX 10 mx1.example.net.
    mx1   A  192.0.2.10
    $ORIGIN provider.example.
    relay A  192.0.2.50
roles:
  - {role: relay, host: relay.provider.example, trusted_networks: 198.51.100.0/24,
     recipient_limit: {limit: 2, behaviour: documented}}
  - {role: primary-mx, host: mx1.example.net, local_domains: example.net}
traffic:
  - {kind: sender, host: mailer.customer.example, smart_host: relay.provider.example,
     rate: 1/20m, arrivals: fixed, count: 2, recipients: 3,
     from: news@customer.example, to: ["r{n}@example.net"]}
expectations:
  - guarantee: conservation
waive: {retry-discipline: tiny, bounce-dsn: tiny, mx-order: tiny}
"""
