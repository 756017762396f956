"""emrr diff (issue 9 deliverable 1; DESIGN.md "Change impact"): every difference between two
rulesets, classified for a supplier whose parser was built on OLD.

The classification cases are data (tests/cases/diff.json, its schema tests/cases/diff.schema.json):
copies of emrr-revised edited as data into OLD and NEW, each with every (report, YAML path,
impact) emrr diff must give. Guard tests hold the comparison to the schema: every property the
ruleset schema allows, and every attribute of the typed Field, has a comparison rule.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from emrr import yamlio
from emrr.rules import diff, ruleset
from emrr.rules.ruleset import Field, Report, Ruleset
from tests.test_report_bad_input import assert_user_error, run_cli

CASES_DIR = Path(__file__).parent / "cases"
MANIFEST = json.loads((CASES_DIR / "diff.json").read_text(encoding="utf-8"))
CASES = MANIFEST["cases"]


def _node(data, path):
    for key in path:
        data = data[key]
    return data


def apply(folder: Path, edit: dict) -> None:
    """One edit of the cases' schema to a ruleset folder, through yaml.safe_load/safe_dump."""
    path = folder / edit["file"]
    if "copy" in edit:
        shutil.copyfile(folder / edit["copy"], path)
        return
    if "comment" in edit:  # a comment line above the path's line: the one edit that must touch the text
        text = path.read_text(encoding="utf-8")
        line = yamlio.line_index(text)[tuple(edit["comment"])]
        lines = text.splitlines(keepends=True)
        lines.insert(line - 1, f"# {edit['value']}\n")
        path.write_text("".join(lines), encoding="utf-8")
        return
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if "set" in edit:
        _node(data, edit["set"][:-1])[edit["set"][-1]] = edit["value"]
    elif "insert" in edit:
        _node(data, edit["insert"][:-1]).insert(edit["insert"][-1], edit["value"])
    elif "delete" in edit:
        del _node(data, edit["delete"][:-1])[edit["delete"][-1]]
    else:
        items = _node(data, edit["move"][:-1])
        items.insert(edit["to"], items.pop(edit["move"][-1]))
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def make(base: str, edits: list[dict], folder: Path) -> Path:
    """A copy of the shipped ruleset ``base``, every file loaded and dumped (so that both sides of a case
    lose their comments alike), with ``edits`` applied in order."""
    shutil.copytree(ruleset.RULES_DIR / base, folder)
    for path in folder.glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    for edit in edits:
        apply(folder, edit)
    return folder


def triples(verdict: diff.Verdict) -> list[tuple]:
    return sorted(((c.report or "", c.path, c.impact) for c in verdict.changes))


def expected(changes: list[list]) -> list[tuple]:
    return sorted(((report or "", path, impact) for report, path, impact in changes))


def test_manifest_is_valid():
    """The cases follow their schema; ids are unique."""
    schema = json.loads((CASES_DIR / "diff.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(MANIFEST)
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids))


def test_cases_cover_every_impact():
    """Each of the four classes is exercised by a case (DESIGN.md "Change impact")."""
    assert {c[2] for case in CASES for c in case["changes"]} == set(diff.IMPACTS)


@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in CASES])
def test_classification(case, tmp_path):
    """emrr diff gives exactly the case's changes; each with a reason and the clause of each side that
    has the thing changed; and it is breaking exactly when one change is."""
    base = case.get("base", MANIFEST["base"])
    old = make(base, case.get("old", []), tmp_path / "old")
    new = make(base, case.get("new", []), tmp_path / "new")
    verdict = diff.compare(ruleset.load(str(old)), ruleset.load(str(new)))
    assert triples(verdict) == expected(case["changes"])
    for change in verdict.changes:
        assert change.reason and "\n" not in change.reason
        assert change.old != change.new
        if change.old is not None:
            assert change.clause_old, change
        if change.new is not None:
            assert change.clause_new, change
    assert verdict.breaking == any(c[2] == "breaking" for c in case["changes"])


@pytest.mark.parametrize("golden", MANIFEST["golden"], ids=lambda g: f"{g['old']}-{g['new']}")
def test_golden_shipped_rulesets(golden):
    """`emrr diff emrr-consultation-draft emrr-revised`: the hand-checked list of changes."""
    assert triples(diff.diff(golden["old"], golden["new"])) == expected(golden["changes"])


@pytest.mark.parametrize("name", ["emrr-revised", "emrr-consultation-draft", "smets1-mrr-v2.0", "smets1-mrr-v2.8",
                                  "smets1-mrr-v3.0"])
def test_a_ruleset_against_itself_and_a_copy(name, tmp_path):
    """DESIGN.md: a ruleset compared with itself shows nothing, by name or as a copied folder."""
    assert diff.diff(name, name).changes == ()
    shutil.copytree(ruleset.RULES_DIR / name, tmp_path / "copy")
    assert diff.diff(name, str(tmp_path / "copy")).changes == ()


def test_field_inserted_is_one_change_whatever_its_position(tmp_path):
    """Position is meaning, but a field inserted anywhere is one addition, never a rename of every later field."""
    base = ruleset.load("emrr-revised").reports["ECOSMIG-003"]
    field = {"name": "Inserted", "source": {"column": "device_serial"}, "type": "text", "max_length": 8,
             "mandatory": False}
    old = ruleset.load(str(make("emrr-revised", [], tmp_path / "old")))
    for position in range(len(base.detail) + 1):
        new = make("emrr-revised", [{"file": "ECOSMIG-003.yaml", "insert": ["detail", "fields", position],
                                     "value": field}], tmp_path / str(position))
        assert triples(diff.compare(old, ruleset.load(str(new)))) == [
            ("ECOSMIG-003", f"detail.fields[{position}]", "breaking")]


def _schema_paths(schema: dict, node: dict, path: tuple = ()) -> set[tuple]:
    """Every property path the schema allows under ``node`` ("*" for a list's items), down to leaves;
    a mapping with free keys (additionalProperties) is a leaf."""
    if "$ref" in node:
        return _schema_paths(schema, schema["$defs"][node["$ref"].split("/")[-1]], path)
    if node.get("type") == "array" and isinstance(node.get("items"), dict) and (
            "$ref" in node["items"] or "properties" in node["items"]):
        return _schema_paths(schema, node["items"], path + ("*",))
    if "properties" not in node:
        return {path}
    out = set()
    for key, sub in node["properties"].items():
        out |= _schema_paths(schema, sub, path + (key,))
    return out


def _rule_paths() -> set[tuple]:
    """Every path the comparison rules cover, layouts and fields expanded as the schema names them."""
    out = set()

    def expand(rules: dict, prefix: tuple) -> None:
        for rel, rule in rules.items():
            if rule == "layout":
                expand(diff.LAYOUT_RULES, prefix + rel)
            elif rule == "fields":
                expand(diff.FIELD_RULES, prefix + rel + ("*",))
            else:
                out.add(prefix + rel)

    expand(diff.RULESET_RULES, ("ruleset",))
    expand(diff.REPORT_RULES, ("report",))
    return out


def test_every_schema_property_has_a_comparison_rule():
    """A setting added to rules/ruleset.schema.json is compared by emrr diff, or this fails: each property
    path the schema allows is covered by a rule at it or above it, and no rule names a path the schema lacks."""
    schema = ruleset.schema()
    allowed = {("ruleset", *p) for p in _schema_paths(schema, schema["$defs"]["ruleset"])}
    allowed |= {("report", *p) for p in _schema_paths(schema, schema["$defs"]["report"])}
    rules = _rule_paths()
    uncovered = [p for p in allowed if not any(p[:k] in rules for k in range(1, len(p) + 1))]
    assert uncovered == []
    stale = [r for r in rules if not any(p[: len(r)] == r for p in allowed)]
    assert stale == []


# Where each attribute of the typed ruleset is compared (a path of _rule_paths, or above one); the
# attributes that are no setting of the ruleset are named with why.
TYPED = {
    Ruleset: {"name": ("ruleset", "name"), "title": ("ruleset", "title"), "reports": ("ruleset", "reports"),
              "header": ("ruleset", "header"), "trailer": ("ruleset", "trailer"),
              "datetime_format": ("ruleset", "formats", "datetime"), "date_format": ("ruleset", "formats", "date"),
              "file_pattern": ("ruleset", "file_name", "pattern"),
              "sequence_padding": ("ruleset", "file_name", "sequence_padding"),
              "sequence_first": ("ruleset", "sequence", "first"), "sequence_max": ("ruleset", "sequence", "max"),
              "produce_empty": ("ruleset", "empty_reports", "produce"),
              "summary_outages": ("ruleset", "outages", "summary_reports"),
              "delimiter": ("ruleset", "csv", "delimiter"), "quote_char": ("ruleset", "csv", "quote_char"),
              "line_terminator": ("ruleset", "csv", "line_terminator"), "encoding": ("ruleset", "csv", "encoding"),
              "folder": ("ruleset", "file_name", "folder"), "regime": ("ruleset", "regime"),
              "recipient_pattern": ("ruleset", "recipients", "pattern"),
              "recipient_party": ("ruleset", "recipients", "party")},
    Report: {"id": ("report", "id"), "title": ("report", "title"), "clause": ("report", "clause"),
             "kind": ("report", "kind"), "recipient_rule": ("report", "recipient", "rule"),
             "cron": ("report", "schedule", "cron"), "window": ("report", "schedule", "window"),
             "assignment": ("report", "select", "assignment"), "event_types": ("report", "select", "event_types"),
             "status": ("report", "select", "status"), "group_by": ("report", "select", "group_by"),
             "counts": ("report", "select", "counts"), "order_by": ("report", "select", "order_by"),
             "detail": ("report", "detail"), "titles_accepted": ("report", "title_also"),
             "header": ("report", "header"), "recipient_columns": ("report", "recipient", "columns"),
             "recipient_role": ("report", "recipient", "role"), "hide": ("report", "recipient", "hide"),
             "where": ("report", "select", "where"), "explode": ("report", "select", "explode"),
             "key": ("report", "select", "key"), "period": ("report", "select", "period"),
             "measures": ("report", "select", "measures"), "calendar": ("report", "select", "calendar"),
             "rank_by": ("report", "select", "rank_by"), "blank": ("report", "select", "blank"),
             "rolling": ("report", "schedule", "window", "rolling"), "derive": ("report", "select", "derive"),
             "identity": ("report", "identity"), "reconcile": ("report", "reconcile")},
    Field: {name: ("report", "detail", "fields", "*", "source" if name == "source_kind" else name)
            for name in ("name", "source_kind", "source", "type", "max_length", "mandatory", "enum",
                         "mandatory_when", "empty_unless", "minimum")},
}
NOT_SETTINGS = {
    Ruleset: {"digest": "a hash of the files", "path": "where the folder is", "raw": "the YAML the rules compare",
              "warnings": "what the loader says of it"},
    Report: {"raw": "the YAML the rules compare", "warnings": "what the loader says of it"},
    Field: {},
}


@pytest.mark.parametrize("cls", [Ruleset, Report, Field], ids=lambda c: c.__name__)
def test_every_typed_attribute_has_a_comparison_rule(cls):
    """An attribute added to the typed Ruleset, Report or Field is placed here (compared, or said not to be a
    setting) or this fails; each placed one is under a comparison rule."""
    names = {f.name for f in dataclasses.fields(cls)}
    assert names == set(TYPED[cls]) | set(NOT_SETTINGS[cls])
    rules = _rule_paths()
    for name, path in TYPED[cls].items():
        assert any(path[:k] in rules or any(r[: len(path)] == path for r in rules)
                   for k in range(1, len(path) + 1)), (name, path)


def test_an_unknown_key_is_an_error_not_a_silent_pass():
    """A key the rules do not know (a schema grown without a rule) stops the comparison."""
    old = ruleset.load("emrr-revised")
    raw = {**old.raw, "novel": 1}
    new = dataclasses.replace(old, raw=raw)
    with pytest.raises(KeyError, match="novel"):
        diff.compare(old, new)


# ----------------------------------------------------------------------------- command line


def test_cli_exit_status_and_outputs(tmp_path):
    """Exit 1 when something is breaking, with --json in the issue's shape and --markdown written."""
    status, stdout, stderr = run_cli("diff", "emrr-consultation-draft", "emrr-revised", "--json",
                                     str(tmp_path / "d.json"), "--markdown", str(tmp_path / "d.md"))
    assert status == 1, stderr
    assert "1 breaking" in stdout and "ECOSMIG-003" in stdout
    data = json.loads((tmp_path / "d.json").read_text(encoding="utf-8"))
    assert list(data) == ["old", "new", "changes"]
    assert (data["old"], data["new"]) == ("emrr-consultation-draft", "emrr-revised")
    assert all(list(c) == ["report", "path", "old", "new", "impact", "reason", "clause_old", "clause_new"]
               for c in data["changes"])
    assert data["changes"][0] == {
        "report": "ECOSMIG-003", "path": "detail.fields[7].max_length", "old": 7, "new": 9, "impact": "breaking",
        "reason": data["changes"][0]["reason"], "clause_old": "EMRR App. A ECOSMIG-003 Detail record",
        "clause_new": "EMRR App. A ECOSMIG-003 Detail record"}
    markdown = (tmp_path / "d.md").read_text(encoding="utf-8")
    assert "## Breaking (1)" in markdown and "`detail.fields[7].max_length`" in markdown


def test_cli_nothing_breaking_is_exit_0(tmp_path):
    status, stdout, _ = run_cli("diff", "emrr-revised", "emrr-revised", "--json", str(tmp_path / "d.json"))
    assert status == 0 and "no change" in stdout
    assert json.loads((tmp_path / "d.json").read_text(encoding="utf-8"))["changes"] == []
    new = make("emrr-revised", [{"file": "ECOSMIG-001.yaml", "set": ["recipient", "rule"],
                                 "value": "responsible_supplier_at_window_end"}], tmp_path / "new")
    status, stdout, _ = run_cli("diff", "emrr-revised", str(new))
    assert status == 0 and "1 behaviour" in stdout


def test_cli_could_not_run_is_one_line_exit_2(tmp_path):
    """Issue 9 "Bad input": an unknown or invalid ruleset is one line, exit 2, nothing written."""
    status, _, stderr = run_cli("diff", "emrr-revised", "no-such-ruleset", "--json", str(tmp_path / "d.json"))
    assert_user_error(status, stderr, "unknown ruleset 'no-such-ruleset'")
    broken = make("emrr-revised", [{"file": "ECOSMIG-002.yaml", "set": ["detail", "fields", 3, "max_length"],
                                    "value": "six"}], tmp_path / "broken")
    status, _, stderr = run_cli("diff", str(broken), "emrr-revised", "--markdown", str(tmp_path / "d.md"))
    assert_user_error(status, stderr, "ECOSMIG-002.yaml", "detail.fields[3].max_length")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken"]


def test_cli_document_to_standard_output():
    """--json - or --markdown -: standard output carries only the document, the table goes to standard error."""
    status, stdout, stderr = run_cli("diff", "emrr-consultation-draft", "emrr-revised", "--json", "-")
    assert status == 1 and len(json.loads(stdout)["changes"]) == 15 and "1 breaking" in stderr
    status, stdout, stderr = run_cli("diff", "emrr-consultation-draft", "emrr-revised", "--markdown", "-")
    assert stdout.startswith("# Changes from emrr-consultation-draft to emrr-revised") and "1 breaking" in stderr
    status, _, stderr = run_cli("diff", "emrr-revised", "emrr-revised", "--json", "-", "--markdown", "-")
    assert_user_error(status, stderr, "only one document")


def test_a_record_only_one_side_has_is_one_breaking_change():
    """A header or trailer only one side has (SMETS1 files have no trailer, DESIGN.md "Rulesets": the schema
    requires one today) is one change, whichever way: the files gain or lose a record."""
    with_trailer = ruleset.load("emrr-revised")
    without = dataclasses.replace(with_trailer, raw={k: v for k, v in with_trailer.raw.items() if k != "trailer"})
    for old, new in ((with_trailer, without), (without, with_trailer)):
        assert triples(diff.compare(old, new)) == [("", "trailer", "breaking")]


def test_cli_smets1_in_progress_breaking_then_withdrawn(tmp_path):
    """Issue 10 "End to end": `emrr diff smets1-mrr-v2.0 smets1-mrr-v2.8` reports v2.8's new Completion Status
    'In Progress' (002:L540) as breaking and exits 1; `emrr diff smets1-mrr-v2.8 smets1-mrr-v3.0` shows its
    withdrawal (spec/004 §4.5.2, 004:L129): the value gone (compatible) and its MA outcomes no longer selected."""
    status, stdout, stderr = run_cli("diff", "smets1-mrr-v2.0", "smets1-mrr-v2.8", "--json", str(tmp_path / "a.json"))
    assert status == 1, stderr
    changes = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))["changes"]
    status_field = [c for c in changes if (c["report"], c["path"]) == ("S1MIG-006", "detail.fields[11].enum")]
    assert len(status_field) == 1 and status_field[0]["impact"] == "breaking"
    assert "In Progress" in status_field[0]["new"] and "In Progress" not in status_field[0]["old"]
    assert "'In Progress'" in status_field[0]["reason"] and "'In Progress'" in stdout
    status, stdout, stderr = run_cli("diff", "smets1-mrr-v2.8", "smets1-mrr-v3.0", "--json", str(tmp_path / "b.json"))
    assert status == 0, stderr
    changes = {(c["report"], c["path"]): c for c in json.loads((tmp_path / "b.json").read_text(encoding="utf-8"))[
        "changes"]}
    withdrawn = changes[("S1MIG-006", "detail.fields[11].enum")]
    assert withdrawn["impact"] == "compatible" and "withdrawn" in withdrawn["reason"]
    assert "In Progress" in withdrawn["old"] and "In Progress" not in withdrawn["new"]
    selected = changes[("S1MIG-006", "select.event_types")]
    assert selected["impact"] == "behaviour" and "ma_in_progress" in selected["old"]
    assert "ma_in_progress" not in selected["new"]
