"""Issue 10 deliverable 2: every ambiguity the SMETS1 MRR's text leaves (the digest's A1-A43,
../shared/spec/smets1-digest.md §4) is settled in each SMETS1 ruleset as a declared reading with its
reason (a YAML comment '# A<n> reading ...' beside the rule, or '# A<n> (v2.0) ...' where a version
reads its own text), and docs/smets1.md tabulates all 43; every rule cites its clause."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emrr.rules import diff, ruleset

ROOT = Path(__file__).resolve().parent.parent
AMBIGUITIES = range(1, 44)
SMETS1 = ["smets1-mrr-v2.0", "smets1-mrr-v2.8", "smets1-mrr-v3.0"]


def _comments(name: str) -> list[str]:
    folder = ruleset.RULES_DIR / name
    return [c[2] for p in sorted(folder.glob("*.yaml")) for c in diff.comments(p.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("name", SMETS1)
def test_every_ambiguity_has_a_declared_reading(name):
    """Each of A1-A43 is named in a comment of the ruleset that gives a reading and a reason."""
    text = "\n".join(_comments(name))
    missing = [n for n in AMBIGUITIES if not re.search(rf"\bA{n} (reading|\()", text)]
    assert missing == []
    assert "because" in text


@pytest.mark.parametrize("name", SMETS1)
def test_every_rule_cites_the_mrr(name):
    """Every report, and every section of it that carries a clause, cites spec/002 or spec/004 by line."""
    rs = ruleset.load(name)
    cited = re.compile(r"002:L\d+|004:L\d+")
    for report in rs.reports.values():
        for key in ("recipient", "schedule", "select", "detail"):
            assert cited.search(report.raw[key]["clause"]), (report.id, key)
        assert cited.search(report.raw["clause"]), report.id
    for key in ("recipients", "csv", "file_name", "sequence", "empty_reports", "outages"):
        assert cited.search(rs.raw[key]["clause"]), key


def test_docs_tabulate_all_43():
    """docs/smets1.md has one row per ambiguity, A1 to A43, each with its reading and reason."""
    doc = (ROOT / "docs" / "smets1.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| A(\d+) \|", doc, flags=re.M)
    assert [int(n) for n in rows] == list(AMBIGUITIES)
