"""The parser corpus (conformance/corpus.py, `emrr corpus DIR`, docs/corpus.md): written, its
manifest valid against conformance/corpus.schema.json, byte-identical from run to run, every
case's verdict the checker's, every operator and every report present."""

from __future__ import annotations

import copy as copy_module
import dataclasses
import datetime as dt
import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from emrr import cli
from emrr.conformance import corpus, handlog, mutations
from emrr.conformance.catalogue import CATALOGUE
from emrr.conformance.checker import check
from emrr.conformance.corpus import Builder, CorpusMismatch
from emrr.conformance.mutations import Change, Expected, Operator
from emrr.errors import UserError
from emrr.rules import ruleset as rules

ROOT = Path(__file__).resolve().parent.parent
RULES = rules.load(None)
GOLDEN = ROOT / "tests" / "golden" / "expected"


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> tuple[Path, Path]:
    """The corpus written twice: by the API, and by the command line over an earlier corpus."""
    tmp = tmp_path_factory.mktemp("corpus")
    first = tmp / "first"
    corpus.write(first)
    second = tmp / "second"
    shutil.copytree(first, second)
    (second / "cases" / "stale-case").mkdir()
    (second / "cases" / "stale-case" / "old.csv").write_text("left from an earlier corpus")
    assert cli.main(["corpus", str(second)]) == 0  # an earlier corpus is replaced as a whole
    return first, second


@pytest.fixture(scope="module")
def manifest(corpora) -> dict:
    return json.loads((corpora[0] / "manifest.json").read_text(encoding="utf-8"))


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_manifest_validates_against_its_schema(manifest):
    schema = json.loads((ROOT / "conformance" / "corpus.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(manifest)
    assert manifest["format"] == "emrr-parser-corpus" and manifest["ruleset"] == RULES.name
    assert set(manifest["checks"]) == set(CATALOGUE)


def test_schema_rejects_an_inconsistent_case(manifest):
    validator = jsonschema.Draft202012Validator(corpus.schema())
    valid = next(c for c in manifest["cases"] if c["valid"])
    invalid = next(c for c in manifest["cases"] if not c["valid"])
    broken = [
        {**valid, "expected_checks": ["field-type"]},  # a valid case with an error
        {k: v for k, v in invalid.items() if k != "defect"},  # an invalid case without its defect
        {**invalid, "expected_checks": []},
        {**valid, "files": ["/abs/path.csv"]},
        {**valid, "surprise": 1},
    ]
    for case in broken:
        assert not validator.is_valid({**manifest, "cases": [case]}), case["id"]


def test_corpus_is_byte_identical_across_runs(corpora):
    first, second = _tree(corpora[0]), _tree(corpora[1])
    assert sorted(first) == sorted(second)
    assert first == second


def test_every_case_gives_its_expected_verdict(corpora, manifest):
    root = corpora[0]
    on_disk = {p.relative_to(root / "cases").parts[0] for p in (root / "cases").iterdir()}
    assert on_disk == {c["id"] for c in manifest["cases"]}
    for case in manifest["cases"]:
        folder = root / case["path"]
        assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == case["files"]
        verdict = check(folder, RULES, max_examples=None)
        errors = sorted({(f.file, f.line, f.check) for f in verdict if f.severity == "error"},
                        key=lambda k: (k[0], -1 if k[1] is None else k[1], k[2]))
        assert sorted({f.check for f in verdict if f.severity == "warning"}) == case["expected_warnings"], case["id"]
        if case["valid"]:
            assert errors == [], case["id"]
            assert case["expected_checks"] == []
            continue
        expected = [(f["file"], f["line"], f["check"]) for f in case["findings"]]
        assert errors == expected, case["id"]
        assert case["expected_checks"] == sorted({c for _, _, c in expected})
        assert case["expected_checks"] == sorted(mutations.OPERATORS[case["operator"]].checks)
        defect = case["defect"]["file"]
        assert defect in case["files"] or defect in {f["file"] for f in case["findings"]}


def test_every_operator_and_every_report_appears(manifest):
    operators = [c["operator"] for c in manifest["cases"] if c["kind"] == "mutation"]
    assert sorted(operators) == sorted(op_id for op_id, op in mutations.OPERATORS.items() if op.applies(RULES))
    for rid in set(corpus.REFERENCE.reports) & set(RULES.reports):  # the reports its hand-built log declares
        cases = [c for c in manifest["cases"] if c["valid"] and c["reports"] == [rid]]
        assert cases, f"no valid case of {rid} alone"
    covered = set().union(*(set(c["expected_checks"]) for c in manifest["cases"]))
    elsewhere = set().union(*(op.checks for op in mutations.OPERATORS.values() if not op.applies(RULES)))
    assert covered | elsewhere == mutations.ERROR_CHECKS - set(mutations.NOT_PRODUCIBLE)
    assert not covered & {"recipient-party", "report-reconciliation"}  # the SMETS1 MRR's: its own corpus


def test_edge_cases_hold_what_they_claim(corpora, manifest):
    root = corpora[0]
    ids = {c["id"] for c in manifest["cases"]}
    assert {"valid-maximum-length-fields", "valid-empty-optional-fields", "valid-quoted-empty-optional-fields",
            "valid-quoted-fields-not-needed", "valid-all-ecos-statuses", "valid-catch-up-window-after-outage",
            "valid-two-files-from-one-run", "valid-sequence-numbers-above-nine", "valid-late-records"} <= ids
    def text(case_id: str) -> str:
        return "".join(p.read_text(encoding="utf-8") for p in (root / "cases" / case_id).rglob("*.csv"))

    assert ',"",' in text("valid-quoted-empty-optional-fields")
    quoted = (root / "cases" / "valid-quoted-fields-not-needed").rglob("*.csv")
    assert all(line.startswith('"') for p in quoted for line in p.read_text(encoding="utf-8").splitlines())
    statuses = text("valid-all-ecos-statuses")
    assert all(f",{s}," in statuses for s in ("Success", "Failure", "Installed"))
    longest = max(len(v) for v in re.split(r"[,\r\n]", text("valid-maximum-length-fields"))
                  if not v.startswith(("Summary", "Detail")))
    assert longest == 30
    assert "valid-catch-up-window-after-outage" in ids and "summary-reconciliation-incomplete" not in next(
        c for c in manifest["cases"] if c["id"] == "valid-catch-up-window-after-outage")["expected_warnings"]


def test_reference_delivery_is_the_golden_one(corpora):
    """The corpus's reference log is the golden log (conformance/logs/reference.yaml, held once):
    its delivery is tests/golden/expected, file for file."""
    assert _tree(corpora[0] / "cases" / "valid-reference-delivery") == _tree(GOLDEN)


def test_docs_example_runs_the_corpus(corpora, manifest):
    """The Python example of docs/corpus.md, with the checker as the parser: no case fails; a
    parser that accepts everything fails exactly the invalid cases."""
    doc = (ROOT / "docs" / "corpus.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", doc, re.DOTALL).group(1)
    namespace: dict = {}
    exec(compile(code, "docs/corpus.md", "exec"), namespace)  # noqa: S102 - our own document

    def checker_parser(files: list[Path]) -> set[str]:
        folder = files[0].parent.parent
        return {f.check for f in check(folder, RULES) if f.severity == "error"}

    assert namespace["run_corpus"](corpora[0], checker_parser, compare_checks=True) == []
    lax = namespace["run_corpus"](corpora[0], lambda files: set())
    assert len(lax) == sum(not c["valid"] for c in manifest["cases"])


def test_docs_name_every_operator():
    doc = (ROOT / "docs" / "corpus.md").read_text(encoding="utf-8")
    missing = [op for op in mutations.OPERATORS if f"`{op}`" not in doc]
    assert not missing, missing


def test_hand_logs_are_data_checked_by_their_schema():
    """protects the hand-built logs held once as data (conformance/logs/*.yaml, described by
    conformance/handlog.schema.json): every shipped log loads; a row short of a value, a time
    YAML would read as a date-time, an unknown device model and an unknown event type are each
    an error naming the file and where in it."""
    assert handlog.names() == ["edge", "reference", "smets1"]
    jsonschema.Draft202012Validator.check_schema(handlog.schema())
    data = yaml.safe_load((ROOT / "conformance" / "logs" / "reference.yaml").read_text(encoding="utf-8"))
    assert handlog.parse(yaml.safe_dump(data), "x.yaml") == handlog.load("reference")

    def broken(edit) -> str:
        copy = copy_module.deepcopy(data)
        edit(copy)
        with pytest.raises(UserError) as caught:
            handlog.parse(yaml.safe_dump(copy), "x.yaml")
        return str(caught.value)

    assert re.match(r"x\.yaml:\d+: at devices\.rows\[0\]: ", broken(lambda d: d["devices"]["rows"][0].pop()))
    assert re.match(r"x\.yaml:\d+: at events\.rows\[0\]\[3\]: ", broken(
        lambda d: d["events"]["rows"][0].__setitem__(3, dt.datetime(2023, 7, 3, 1, 10))))
    assert "GSME_X" in broken(lambda d: d["devices"]["rows"][0].__setitem__(4, "GSME_X"))
    assert "unknown event type 'migrated'" in broken(lambda d: d["events"]["rows"][0].__setitem__(1, "migrated"))


def test_a_report_the_hand_built_log_does_not_declare_is_skipped_with_its_reason(tmp_path):
    """protects adding a report as data (issue 8, review B4): a report of the ruleset that the
    reference log declares no file of (conformance/logs/reference.yaml ``reports``) gets no
    per-report case, and the corpus says why, instead of failing on an empty case."""
    added = dataclasses.replace(RULES.reports["ECOSMIG-001"], id="ECOSMIG-107")
    extended = dataclasses.replace(RULES, reports={**RULES.reports, added.id: added})

    class Recording(Builder):
        def valid(self, case_id, *args, **kwargs):
            self.cases.append(case_id)

        def mutation(self, op, source):
            self.cases.append(f"invalid-{op.id}")

    builder = Recording(tmp_path, {}, extended)
    corpus.build_cases(builder)
    assert "report-ecosmig-107" not in builder.cases and "report-ecosmig-001" in builder.cases
    assert ("report-ecosmig-107", "the reference log (conformance/logs/reference.yaml) "
                                  "declares no file of ECOSMIG-107") in builder.skipped
    assert "report-ecosmig-001" not in {case for case, _ in builder.skipped}
    assert "skipped report-ecosmig-107: the reference log" in corpus.Summary(
        "x", 1, 1, 0, 1, 1, tuple(builder.skipped)).render()


def test_a_log_that_declares_reports_its_delivery_lacks_stops_the_corpus(reference):
    """protects the declared reports' honesty: a log whose delivery holds no file of a report it
    declares (or one it does not declare) is a CorpusMismatch."""
    corpus.confirm_reports(corpus.REFERENCE, reference, RULES)  # as declared
    wrong = dataclasses.replace(corpus.REFERENCE, reports=corpus.REFERENCE.reports[:-1])
    with pytest.raises(CorpusMismatch, match="reference log declares"):
        corpus.confirm_reports(wrong, reference, RULES)


# --------------------------------------------------------------------------- failing loudly


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    return corpus.deliver(corpus.REFERENCE, tmp_path_factory.mktemp("reference"), RULES)


def test_a_case_the_checker_does_not_confirm_stops_the_corpus(reference, tmp_path):
    builder = Builder(tmp_path, {"reference": reference}, RULES)

    def wrong(d):  # declares a BOM, does nothing
        f = d.first("ECOSMIG-001")
        return Change(f.rel, 1, "nothing", (Expected(f.rel, 1, "bom"),))

    with pytest.raises(CorpusMismatch, match="invalid-wrong"):
        builder.mutation(Operator("wrong", frozenset({"bom"}), "Declares a BOM.", wrong), "reference")
    with pytest.raises(CorpusMismatch, match="valid-gap"):  # sequence 2 left out: a gap, not valid
        builder.valid("valid-gap", "not valid", "edge", "reference", lambda rel: "_2_" not in rel)


def test_cli_corpus_refuses_a_directory_of_other_files(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep me")
    assert cli.main(["corpus", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("emrr: error: ") and "not a parser corpus" in err and "\n" not in err
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    assert cli.main(["corpus", str(tmp_path / "mine.txt")]) == 2
    assert cli.main(["corpus"]) == 2
