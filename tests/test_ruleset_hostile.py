"""Hostile rulesets as data (tests/cases/rulesets.json, its schema tests/cases/rulesets.schema.json):
each case edits a copy of a shipped ruleset as data and names the campaign row it protects
(../shared/reviews/reliability-campaign.md, section 4). A ruleset that would write outside --out,
overwrite its own files, crash a command or write unreadable files is refused at load in one line
naming the file and the YAML path (docs/rulesets.md "Files and validation"): ``emrr report`` and
``emrr check`` exit 2 and write nothing. The one defect a shipped ruleset has on purpose (an enum
value longer than its field, the consultation draft's 'Installed') is a warning the summary prints.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from emrr.errors import UserError
from emrr.rules import ruleset
from tests.test_report_bad_input import assert_user_error, report, run_cli, snapshot

CASES_DIR = Path(__file__).parent / "cases"
MANIFEST = json.loads((CASES_DIR / "rulesets.json").read_text(encoding="utf-8"))
CASES = MANIFEST["cases"]


def test_manifest_is_valid():
    """The cases follow their schema (a case is data any implementation can run)."""
    schema = json.loads((CASES_DIR / "rulesets.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(MANIFEST)
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids))


def make(case: dict, root: Path) -> Path:
    """A copy of the base ruleset with the case's edits, made through yaml.safe_load/safe_dump."""
    folder = root / case["id"]
    shutil.copytree(ruleset.RULES_DIR / case.get("base", MANIFEST["base"]), folder)
    for edit in case["edits"]:
        path = folder / edit["file"]
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        node = data
        for key in edit["set"][:-1]:
            node = node[key]
        node[edit["set"][-1]] = edit["value"]
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return folder


def _ids(kind: str) -> list:
    return [pytest.param(case, id=case["id"]) for case in CASES if kind in case]


@pytest.mark.parametrize("case", _ids("error"))
def test_refused_at_load(case, tmp_path):
    """The load refuses the case in one line: the file with its line, the YAML path, the words."""
    folder = make(case, tmp_path)
    with pytest.raises(UserError) as caught:
        ruleset.load(str(folder))
    expected = case["error"]
    line = str(caught.value)
    assert "\n" not in line
    assert caught.value.file.split(":")[0] == str(folder / expected["file"]), line
    assert caught.value.path == expected["at"], line
    assert expected["says"] in line, line


@pytest.mark.parametrize("case", _ids("error"))
def test_report_and_check_exit_2_writing_nothing(case, tmp_path, golden_log):
    """Both commands that read a ruleset: exit 2, one line, and nothing written (campaign 4.08 and
    4.23 found files above --out: the folder around --out is compared too)."""
    folder = make(case, tmp_path / "rules")
    around = tmp_path / "a" / "b"
    around.mkdir(parents=True)
    status, _, stderr = report(golden_log, around / "out", "--ruleset", str(folder))
    assert_user_error(status, stderr, f"at {case['error']['at']}:", case["error"]["says"])
    assert snapshot(tmp_path / "a") == {"b": "dir"}
    status, _, stderr = run_cli("check", str(around), "--ruleset", str(folder))
    assert_user_error(status, stderr, f"at {case['error']['at']}:", case["error"]["says"])


@pytest.mark.parametrize("case", _ids("warning"))
def test_loads_with_a_warning_the_summary_prints(case, tmp_path, golden_log):
    """Campaign 4.03 (L1): an enum value longer than its field's max_length loads (the value may
    never occur) and the report summary says so, naming the file and YAML path."""
    folder = make(case, tmp_path / "rules")
    expected = case["warning"]
    rs = ruleset.load(str(folder))
    assert [w for w in rs.warnings if f"at {expected['at']}:" in w and expected["says"] in w
            and w.startswith(str(folder / expected["file"]) + ":")], rs.warnings
    status, stdout, stderr = report(golden_log, tmp_path / "out", "--ruleset", str(folder))
    assert status == 0, stderr
    assert f"warning: {rs.warnings[0]}" in stdout


def test_shipped_rulesets_load_and_only_the_draft_warns():
    """The revised ruleset has no warning; the consultation draft loads (the project uses it to
    show that its ECoS Status of 7 characters cannot hold 'Installed') with exactly that warning."""
    assert ruleset.load("emrr-revised").warnings == ()
    warnings = ruleset.load("emrr-consultation-draft").warnings
    assert len(warnings) == 1 and "ECOSMIG-003.yaml" in warnings[0] and "'Installed'" in warnings[0], warnings
