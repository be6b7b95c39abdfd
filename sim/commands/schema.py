"""``mxsim schema``: print the JSON Schema of scenario files (for editors)."""
from __future__ import annotations

import argparse
import json

from sim.scenario.schema import Scenario


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("schema", help="print the JSON Schema of scenario files",
                       description=__doc__)
    return p


def scenario_json_schema() -> dict:
    """The JSON Schema (draft 2020-12) that scenario YAML files follow."""
    schema = Scenario.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mxsim scenario"
    return schema


def run(args: argparse.Namespace) -> int:
    print(json.dumps(scenario_json_schema(), indent=2, sort_keys=True))
    return 0
