"""The examples in docs/scenarios.md stay valid as the format evolves."""
import re
from pathlib import Path

import pytest
import yaml

from sim.scenario.loader import load_text

DOC = Path(__file__).resolve().parent.parent / "docs" / "scenarios.md"
HOSTS = ["mx1.example.net", "mx2.example.net", "queue.isp.example", "dial.customer.example",
         "feed.provider.example", "relay.isp.example", "smtp.isp.example",
         "auth.provider.example", "mail.example.org", "bot.spam.example", "mx1.provider.example",
         "mail.client.example"]
#: The hosts the examples name, with an A record each (unless an example
#: brings its own dns section), so that routes to them can work.
PRELUDE = "name: doc\nduration: 1d\nhosts:\n" + "".join(
    f"  - {{name: {n}, address: 192.0.2.{i + 1}}}\n" for i, n in enumerate(HOSTS))
DNS = "dns:\n  zones: |\n" + "".join(
    f"    $ORIGIN {n}.\n    @ A 192.0.2.{i + 1}\n" for i, n in enumerate(HOSTS))
SECTIONS = ("roles", "traffic", "expectations", "waive", "dns")


def _blocks():
    if not DOC.exists():
        return []
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)


def test_docs_have_examples():
    assert len(_blocks()) >= 8


@pytest.mark.parametrize("block", _blocks())
def test_doc_example_validates(block):
    data = yaml.safe_load(block)
    if isinstance(data, dict) and "name" in data:
        load_text(block, "docs/scenarios.md")
    elif isinstance(data, dict) and set(data) & set(SECTIONS):
        load_text(PRELUDE + ("" if "dns" in data else DNS) + block, "docs/scenarios.md")
    elif isinstance(data, dict) and "hosts" in data:
        load_text("name: doc\nduration: 1d\n" + block, "docs/scenarios.md")
    else:
        _one_line_examples(block)


def _one_line_examples(block):
    """Blocks of alternatives, one per line (``schedule: ...``, ``retry: ...``)."""
    lines = [ln.split("#")[0].rstrip() for ln in block.splitlines() if ln.strip()]
    checked = 0
    for line in lines:
        key = line.split(":", 1)[0]
        if key == "schedule":
            text = "name: doc\nduration: 1d\nhosts:\n  - name: a.example\n" \
                   "    address: 192.0.2.1\n    link:\n      " + line + "\n"
        elif key == "access":
            text = "name: doc\nduration: 1d\nhosts:\n  - name: a.example\n" \
                   "    address: 192.0.2.1\n    " + line + "\n  - {name: smtp.isp.example, " \
                   "address: 192.0.2.2}\n"
        elif key == "retry":
            text = PRELUDE + "roles:\n  - role: secondary-mx\n    host: mx1.example.net\n" \
                   "    relay_domains: example.net\n    " + line + "\n"
        else:
            continue
        load_text(text, "docs/scenarios.md")
        checked += 1
    if not checked:
        pytest.skip("a fragment, not a section")
