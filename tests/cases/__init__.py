"""Hand-made checker cases held as data (tests/cases/<name>.json, shape: cases.schema.json), in the
manner of the parser corpus and the JSON-Schema-Test-Suite: each case is a description, edits of a
copy of a valid delivery (mutations.Delivery edits or mutation operators, by name) and every
finding (file, line, field, check) the checker must then report."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import jsonschema
from referencing import Registry, Resource

from emrr.conformance.mutations import Delivery
from emrr.rules.ruleset import Ruleset

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


def schema() -> dict:
    return json.loads((HERE / "cases.schema.json").read_text(encoding="utf-8"))


def validator() -> jsonschema.Draft202012Validator:
    """The cases' schema, with the corpus's schema it borrows check ids and case ids from."""
    corpus = json.loads(resources.files("emrr.conformance").joinpath("corpus.schema.json").read_text(encoding="utf-8"))
    registry = Registry().with_resource(corpus["$id"], Resource.from_contents(corpus))
    return jsonschema.Draft202012Validator(schema(), registry=registry)


def load(name: str) -> dict:
    """tests/cases/<name>.json, validated against its schema."""
    data = json.loads((HERE / f"{name}.json").read_text(encoding="utf-8"))
    validator().validate(data)
    return data


def key(finding: dict) -> tuple:
    """A finding of a case file as the checker's tuple (file, line, field, check)."""
    return (finding["file"], finding["line"], finding["field"], finding["check"])


def order(key: tuple) -> tuple:
    file, line, field, check_id = key
    return (file, -1 if line is None else line, field or "", check_id)


def prepare(cases: dict, case: dict, target: Path, rs: Ruleset) -> Delivery:
    """A copy of the cases' source delivery at ``target`` with ``case``'s edits applied."""
    shutil.copytree(ROOT / cases["source"], target)
    delivery = Delivery(target, rs)
    for step in case["edits"]:
        delivery.edit(step)
    return delivery
