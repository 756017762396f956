"""The catalogue owns the checks' messages (issue 8 deliverable 7, review B6): every finding's
sentence is a template of conformance/catalogue.py filled with the values an emitter passes.

These tests read the checker's sources (``ast``): no emitter passes a finished sentence, every
form an emitter names is one of its check's forms, and every form of the catalogue is used.
"""

from __future__ import annotations

import ast
import string
from pathlib import Path

import pytest

from emrr.conformance import catalogue
from emrr.conformance.catalogue import CATALOGUE, CHECKS
from emrr.conformance.findings import Collector, Finding, where

SOURCES = sorted((Path(catalogue.__file__).parent).glob("*.py"))
FORMS = {name for c in CHECKS for name, _ in c.forms}


def _calls() -> list[tuple[Path, ast.Call]]:
    """Every ``….add(...)`` and ``….add_many(...)`` whose first argument is a check id."""
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("add", "add_many") and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and first.value in CATALOGUE:
                    found.append((path, node))
    return found


def _constants(node: ast.AST) -> list[object]:
    """The values an argument can take: a constant, or either branch of a conditional."""
    if isinstance(node, ast.IfExp):
        return _constants(node.body) + _constants(node.orelse)
    assert isinstance(node, ast.Constant), ast.dump(node)
    return [node.value]


def test_public_catalogue_order():
    """protects the public order of the catalogue (review B6): ``CHECKS`` holds every check once."""
    assert [c.id for c in CHECKS] == list(CATALOGUE)
    assert not hasattr(catalogue, "_CHECKS")


def test_emitters_pass_slot_values_not_sentences():
    """protects review B6: no emitter passes a finished sentence (``message=``, ``problem=``),
    and a form an ``add`` names is one of its check's forms."""
    calls = _calls()
    assert len(calls) > 40
    for path, call in calls:
        check = CATALOGUE[call.args[0].value]
        names = {k.arg for k in call.keywords}
        assert not names & {"message", "problem"}, f"{path.name}:{call.lineno}"
        if call.func.attr == "add" and len(call.args) >= 5 and not isinstance(call.args[4], ast.Starred):
            for form in _constants(call.args[4]):
                assert form is None or form in dict(check.forms), f"{path.name}:{call.lineno}: {form!r}"


def test_every_form_is_used_and_every_slot_is_named():
    """protects review B6: every form of the catalogue is named by some emitter (a string in the
    checker's sources), and every template's slots are named (no positional ``{}``)."""
    used = set()
    for path in SOURCES:
        if path.name != "catalogue.py":
            used |= {n.value for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                     if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert FORMS <= used, sorted(FORMS - used)
    for c in CHECKS:
        for _, template in c.templates():
            assert all(name for _, name, _, _ in string.Formatter().parse(template) if name is not None), c.id


def test_a_finding_is_the_template_filled_in():
    """protects review B6: the Collector writes the catalogue's sentence, a form by its name, and
    refuses a value missing from a template (a bug, not a finding)."""
    out = Collector()
    out.add("field-length", "a.csv", 3, "MPxN", length=14, max_length=13)
    out.add("record-order", "a.csv", None, None, "no-header")
    out.add_many("record-type", None, [("a.csv", 4, {"form": "blank", "allowed": "00, 10 or 99"}),
                                       ("a.csv", 5, {"value": "'7'", "allowed": "00, 10 or 99"})], 2)
    assert [f.message for f in out.verdict()] == [
        "no header record; expected one first", "14 characters; at most 13 allowed",
        "a blank line; expected a record (00, 10 or 99)", "'7' is not a record type; expected 00, 10 or 99"]
    with pytest.raises(KeyError):
        out.add("field-length", "a.csv", 3, "MPxN", length=14)


def test_where_a_finding_is():
    """protects the one ``where`` used by the terminal, JUnit and the pytest plugin."""
    assert where(Finding("d/a.csv", 3, "MPxN", "field-length", "error", "m")) == "d/a.csv:3 [MPxN]"
    assert where(Finding("d/a.csv", None, None, "bom", "error", "m")) == "d/a.csv"
