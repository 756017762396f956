"""emrr lint (issue 9 deliverable 2): contradictions inside one ruleset that its schema cannot see.

The cases are data (tests/cases/lint.json, its schema tests/cases/lint.schema.json, whose edits are
those of tests/cases/diff.schema.json): a copy of a shipped ruleset edited as data and every
(id, file, YAML path) lint must find. The consultation draft is flagged for 'Installed' (spec/000
l.259); the revised ruleset is clean. What the loader refuses (tests/cases/rulesets.json) never
reaches lint: the command says the loader's one line and exits 2.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import referencing

from emrr.rules import lint, ruleset
from tests.test_diff import CASES as DIFF_CASES
from tests.test_diff import MANIFEST as DIFF_MANIFEST
from tests.test_diff import make
from tests.test_report_bad_input import assert_user_error, run_cli
from tests.test_ruleset_hostile import MANIFEST as HOSTILE
from tests.test_ruleset_hostile import make as make_hostile

CASES_DIR = Path(__file__).parent / "cases"
MANIFEST = json.loads((CASES_DIR / "lint.json").read_text(encoding="utf-8"))
CASES = MANIFEST["cases"]
DOCS = Path(__file__).parent.parent / "docs" / "impact.md"


def _schema(name: str) -> dict:
    return json.loads((CASES_DIR / name).read_text(encoding="utf-8"))


def test_manifest_is_valid():
    """The cases follow their schema (edits as in diff.schema.json); ids are unique."""
    diff_schema = _schema("diff.schema.json")
    registry = referencing.Registry().with_resource(diff_schema["$id"], referencing.Resource.from_contents(diff_schema))
    jsonschema.Draft202012Validator(_schema("lint.schema.json"), registry=registry).validate(MANIFEST)
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids))


def test_every_lint_has_a_case_and_is_documented():
    """The closed list: each id has a case that finds it, and docs/impact.md lists it; no case names another."""
    found = {f[0] for case in CASES for f in case["findings"]}
    assert found == set(lint.LINTS)
    section = DOCS.read_text(encoding="utf-8").split("\n## emrr lint\n")[1].split("\n## ")[0]
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", section, flags=re.M))
    assert documented == set(lint.LINTS)


def findings(verdict: lint.Verdict) -> list[tuple]:
    return sorted((f.id, Path(f.file).name, f.path) for f in verdict.findings)


@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in CASES])
def test_case(case, tmp_path):
    """lint gives exactly the case's findings, each with the file's line and one sentence."""
    folder = make(case.get("base", MANIFEST["base"]), case["edits"], tmp_path / "rules")
    verdict = lint.lint(ruleset.load(str(folder)))
    assert findings(verdict) == sorted(tuple(f) for f in case["findings"])
    for finding in verdict.findings:
        assert Path(finding.file).parent == folder
        assert isinstance(finding.line, int) and finding.line > 0, finding
        assert finding.message and "\n" not in finding.message


@pytest.mark.parametrize("name", ["emrr-revised", "emrr-consultation-draft"])
def test_shipped_rulesets(name):
    """Issue 9: the draft is flagged for 'Installed' only; the revision is clean."""
    verdict = lint.lint_path(name)
    if name == "emrr-revised":
        assert verdict.findings == ()
    else:
        assert [(f.id, f.path) for f in verdict.findings] == [("value-too-long", "detail.fields[7].enum[2]")]
        assert "'Installed'" in verdict.findings[0].message


def test_no_crash_on_what_the_loader_accepts(tmp_path):
    """lint runs on every ruleset the diff cases make (each loads) and on the hostile case the loader only warns of."""
    for case in DIFF_CASES:
        for side in [side for side in ("old", "new") if case.get(side)]:  # an unedited side is the base
            base = case.get("base", DIFF_MANIFEST["base"])
            folder = make(base, case.get(side, []), tmp_path / f"{case['id']}-{side}")
            assert isinstance(lint.lint(ruleset.load(str(folder))), lint.Verdict)
    for case in HOSTILE["cases"]:
        if "warning" in case:
            verdict = lint.lint(ruleset.load(str(make_hostile(case, tmp_path / "hostile"))))
            assert [f.id for f in verdict.findings] == ["value-too-long"]


@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in HOSTILE["cases"] if "error" in c])
def test_what_the_loader_refuses_is_exit_2(case, tmp_path):
    """A ruleset the loader refuses (a constant longer than its field, a cron that never fires, a delimiter equal
    to the quote character, ...) never reaches lint: the loader's one line, exit 2, nothing written."""
    folder = make_hostile(case, tmp_path / "rules")
    status, _, stderr = run_cli("lint", str(folder), "--json", str(tmp_path / "l.json"))
    assert_user_error(status, stderr, f"at {case['error']['at']}:", case["error"]["says"])
    assert not (tmp_path / "l.json").exists()


def test_cli(tmp_path):
    """Exit 0 clean, 1 with findings (and --json), 2 when it could not run."""
    status, stdout, stderr = run_cli("lint", "emrr-revised")
    assert (status, stdout) == (0, "emrr-revised: clean\n"), stderr
    status, stdout, _ = run_cli("lint", "emrr-consultation-draft", "--json", str(tmp_path / "l.json"))
    assert status == 1 and "value-too-long" in stdout and stdout.endswith("emrr-consultation-draft: 1 finding\n")
    data = json.loads((tmp_path / "l.json").read_text(encoding="utf-8"))
    assert data["ruleset"] == "emrr-consultation-draft" and data["counts"] == {"value-too-long": 1}
    assert [sorted(f) for f in data["findings"]] == [["file", "id", "line", "message", "path"]]
    status, _, stderr = run_cli("lint", "no-such-ruleset")
    assert_user_error(status, stderr, "unknown ruleset 'no-such-ruleset'")


def test_cli_json_to_standard_output():
    """--json -: standard output carries only the document, the findings' lines go to standard error."""
    status, stdout, stderr = run_cli("lint", "emrr-consultation-draft", "--json", "-")
    assert status == 1 and json.loads(stdout)["counts"] == {"value-too-long": 1} and "1 finding" in stderr


def test_cli_smets1_rulesets():
    """Issue 10 "End to end": emrr lint is clean on the MRR v2.8 and v3.0 and says what the v2.0 text contradicts
    in itself: S1MIG-003's Commissioning File DateTime is M (002:L371, the change 'M O' rejected) though an
    Installation in 'Group File Received' (002:L396) has no Commissioning File yet."""
    for name in ("smets1-mrr-v2.8", "smets1-mrr-v3.0"):
        status, stdout, stderr = run_cli("lint", name)
        assert (status, stdout) == (0, f"{name}: clean\n"), stderr
    status, stdout, _ = run_cli("lint", "smets1-mrr-v2.0")
    assert status == 1 and stdout.endswith("smets1-mrr-v2.0: 1 finding\n")
    assert "S1MIG-003.yaml" in stdout and "mandatory-emptied" in stdout and "Commissioning File DateTime" in stdout
