"""The order of a report's records (rules/engine.py order_of): by run, recipient and the report's
order_by, ties as they came (EMRR App. B and MRR 002 App. B leave the order to the report's rules),
worked out from integer keys; it must be exactly Polars' stable sort of the same columns."""

from __future__ import annotations

import polars as pl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from emrr.rules import engine

FEW = st.one_of(st.none(), st.sampled_from(["", "A", "B", "a", "é", "AB"]))
MANY = st.one_of(st.none(), st.text(alphabet="ab0é", max_size=4))
ROW = st.tuples(st.integers(0, 3), st.one_of(st.none(), st.integers(-2, 2)), FEW, MANY, st.booleans(), MANY)


def _polars(keys: pl.DataFrame) -> list[int]:
    return keys.with_row_index("_i").sort(keys.columns, maintain_order=True)["_i"].to_list()


@settings(deadline=None, max_examples=200)
@given(st.lists(ROW, max_size=40), st.integers(1, 6), st.integers(0, 3))
@example([(0, None, "A", "x", True, None), (0, None, "A", "w", True, "b"), (0, 1, None, "w", False, "a")], 6, 0)
def test_order_is_polars_stable_sort(rows, width, few):
    """protects order_of: integers with nulls first, text of few values by its place, text of many
    values compared only among rows tied before it, every later column after it; any column order."""
    names = ["run", "maybe", "few", "many", "flag", "more"]
    frame = pl.DataFrame(rows, schema={"run": pl.Int64, "maybe": pl.Int64, "few": pl.String, "many": pl.String,
                                       "flag": pl.Boolean, "more": pl.String}, orient="row")
    columns = names[:width] if few == 0 else names[few:] + names[:few]
    keys = frame.select(columns)
    old, engine.FEW_VALUES = engine.FEW_VALUES, 3  # "many" and often "few" beyond it: both ways taken
    try:
        assert engine.order_of(keys).tolist() == _polars(keys)
    finally:
        engine.FEW_VALUES = old
    assert engine.order_of(keys).tolist() == _polars(keys)


def test_hand_checked_order():
    """Run, then recipient, then time, then Installation ID; equal rows stay as they came."""
    keys = pl.DataFrame({"run_idx": [1, 0, 0, 0, 0], "recipient": ["S2", "S2", "S1", "S1", "S1"],
                         "occurred_at": [5, 5, 9, 7, 7], "installation_id": ["z", "a", "b", "d", "c"]})
    old, engine.FEW_VALUES = engine.FEW_VALUES, 1  # the Installation ID compared among ties only
    try:
        assert engine.order_of(keys).tolist() == [4, 3, 2, 1, 0]
    finally:
        engine.FEW_VALUES = old
    assert engine.order_of(keys).tolist() == [4, 3, 2, 1, 0]
