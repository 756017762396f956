"""The report engine's record formatting (rules/engine.py Formatter.details): the bytes of each
record exactly as RFC 4180 quoting "where needed" gives them (EMRR App. B; MRR 002 App. B), whichever
way the engine writes them, and where each record starts."""

from __future__ import annotations

import dataclasses
import io

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from emrr.rules import ruleset
from emrr.rules.engine import Formatter

V30 = ruleset.load("smets1-mrr-v3.0")
REPORT = V30.reports["S1MIG-002"]
TEXT = [f for f in REPORT.detail if f.source_kind == "column" and f.type == "text"][:3]


def _frame(values: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(values, schema=[f.source for f in TEXT], orient="row")


def _reference(frame: pl.DataFrame, rep, rs=V30) -> bytes:
    """What Polars writes quoting where necessary: the engine's reading of RFC 4180."""
    text = frame.select([Formatter(rs).field_expr(f) for f in rep.detail])
    buffer = io.BytesIO()
    text.write_csv(buffer, include_header=False, separator=rs.delimiter, quote_char=rs.quote_char,
                   line_terminator=rs.line_terminator, quote_style="necessary", null_value="")
    return buffer.getvalue()


# the MRR's dialect (CRLF, comma), and another a ruleset may declare (LF, semicolon): the unquoted
# path counts each special character against the records' own delimiters and line ends
DIALECTS = [V30, dataclasses.replace(V30, line_terminator="\n", delimiter=";")]


VALUE = st.one_of(st.none(), st.text(alphabet=st.sampled_from(list('ab,;"\r\n é')), max_size=6))


@settings(deadline=None, max_examples=150)
@given(st.lists(st.tuples(VALUE, VALUE, VALUE), min_size=1, max_size=12), st.sampled_from(DIALECTS))
def test_records_are_quoted_where_needed_and_nowhere_else(values, rs):
    """protects the unquoted fast path: with no delimiter, quote, line break or empty value in a
    frame, the engine writes without quoting; with any, it quotes as before; the bytes never differ,
    and each record's start is where the next record begins (a quoted line break included)."""
    rep = dataclasses.replace(REPORT, detail=tuple(dataclasses.replace(f, max_length=99) for f in TEXT))
    frame = _frame(values)
    data, starts = Formatter(rs).details(frame, rep)
    assert data == _reference(frame, rep, rs)
    assert len(starts) == frame.height + 1 and starts[-1] == len(data)
    for i in range(frame.height):  # each record alone is the bytes of its row alone
        assert data[starts[i]:starts[i + 1]] == _reference(frame.slice(i, 1), rep, rs)


def test_a_lone_line_feed_in_a_crlf_file_is_quoted():
    """The unquoted path counts CR and LF apart: a value holding only LF (CRLF line ends) is found."""
    rep = dataclasses.replace(REPORT, detail=tuple(dataclasses.replace(f, max_length=99) for f in TEXT))
    data, starts = Formatter(V30).details(_frame([("a\nb", "c", "d"), ("e", "f", "g")]), rep)
    assert data == b'"a\nb",c,d\r\ne,f,g\r\n' and list(starts) == [0, 11, 18]


def test_hand_checked_quoting():
    """A comma and a quote are quoted (the quote doubled), an empty value is "", a null is nothing."""
    rep = dataclasses.replace(REPORT, detail=tuple(dataclasses.replace(f, max_length=99) for f in TEXT))
    data, _ = Formatter(V30).details(_frame([("a,b", 'say "x"', ""), ("plain", None, "z")]), rep)
    assert data == b'"a,b","say ""x""",""\r\nplain,,z\r\n'


def test_records_alike_are_formatted_once_to_the_same_bytes(smets1_log, smets1_reports, tmp_path, monkeypatch):
    """protects the engine's sharing of formatted records between recipients (a DNO's S1MIG-001
    record and its supplier's, MRR 002:L264), and its chunks of whole files: the reports of the SMETS1
    scenario are the same bytes when every record is formatted on its own, a chunk at a time of a few
    records only."""
    import hashlib

    from emrr.rules import engine

    shared_folder = smets1_reports("smets1-mrr-v3.0")  # written by the engine as it is (before the patches)
    monkeypatch.setattr(engine.Engine, "_content", staticmethod(lambda rows, report: None))
    monkeypatch.setattr(engine.Engine, "CHUNK_RECORDS", 7)
    plain = tmp_path / "plain"
    engine.report(smets1_log, plain, V30, progress=False)

    def digests(folder):
        return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in folder.rglob("*.csv")}

    shared = digests(shared_folder)
    assert len(shared) > 1000 and digests(plain) == shared
