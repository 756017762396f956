"""Who receives a record: the Responsible Supplier of a device at a moment (DESIGN.md "Recipient").

ESME: the electricity supplier; GSME: the gas supplier; GPF: the gas supplier when a gas meter is
connected to the hub, else the electricity (import) supplier, else nobody (spec/003 §25 a-c).
The supplier of a premises and fuel at ``t`` is the gaining supplier of its last change of
supplier at or before ``t``, else its initial supplier (docs/event-log.md).

The premises and the changes of supplier are loaded once into sorted NumPy arrays, so a look-up
for millions of records is a pair of binary searches.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from emrr.errors import UserError
from emrr.rules.eventlog import EventLog, collect

GAS, ELECTRICITY = 1, 0
TYPE_CODES = {"GPF": 0, "ESME": 1, "GSME": 2}
_SPAN = np.int64(1) << np.int64(36)  # seconds; times are below 2**36 (year 4147)


class Timeline:
    """Values that change at instants, one timeline per slot (a premises and fuel, a device):
    the value of a slot at ``t`` is the one its last change at or before ``t`` set.

    The changes are held as one sorted array of keys (slot, instant) packed in an int64, so a
    look-up for millions of (slot, t) pairs is one binary search.
    """

    def __init__(self, slot: np.ndarray, at: np.ndarray, value: np.ndarray):
        key = slot.astype(np.int64) * _SPAN + at.astype(np.int64)
        order = np.argsort(key, kind="stable")  # stable: of two changes at one instant, the later written wins
        self.key = key[order]
        self.value = value[order]

    def __len__(self) -> int:
        return len(self.key)

    def at(self, slot: np.ndarray, t: np.ndarray | int, default: np.ndarray) -> np.ndarray:
        """The value of each slot at ``t`` (a change at ``t`` itself applies), else ``default``."""
        if not len(self.key):
            return default
        slot = slot.astype(np.int64)
        i = np.searchsorted(self.key, slot * _SPAN + np.asarray(t, dtype=np.int64), side="right") - 1
        ic = np.maximum(i, 0)
        found = (i >= 0) & (self.key[ic] // _SPAN == slot)
        return np.where(found, self.value[ic], default)


def _codes(column: pl.Series, code: dict[str, int]) -> np.ndarray:
    """Supplier names -> codes (-1 for none), through the categories when the column has them."""
    if isinstance(column.dtype, (pl.Categorical, pl.Enum)):
        present = column.unique().drop_nulls()
        physical_of_present = present.to_physical().to_numpy().astype(np.int64)
        size = int(physical_of_present.max()) + 2 if len(physical_of_present) else 1
        lookup = np.full(size, -1, dtype=np.int32)
        lookup[physical_of_present] = [code.get(v, -1) for v in present.cast(pl.String).to_list()]
        physical = column.to_physical().fill_null(size - 1).to_numpy().astype(np.int64)
        return lookup[physical]
    return column.replace_strict(code, default=-1, return_dtype=pl.Int32).to_numpy()


def device_fuel() -> pl.Expr:
    """The fuel whose supplier is responsible for the device (needs has_gas, has_electricity)."""
    kind = pl.col("device_type")
    return (pl.when(kind == "ESME").then(pl.lit("electricity"))
            .when(kind == "GSME").then(pl.lit("gas"))
            .when((kind == "GPF") & pl.col("has_gas")).then(pl.lit("gas"))
            .when((kind == "GPF") & pl.col("has_electricity")).then(pl.lit("electricity"))
            .otherwise(pl.lit(None, dtype=pl.String)))


class SupplyIndex:
    """Premises and their changes of supplier, as sorted arrays."""

    def __init__(self, log: EventLog):
        # Supplier columns stay categorical where the file has them so (12M strings cost GBs).
        p = log.tables["premises"].select("premise_index", "has_gas", "has_electricity", "electricity_supplier",
                                          "gas_supplier").collect().sort("premise_index")
        c = collect(log.tables["supply_changes"].select("premise_index", "fuel", "occurred_at", "gaining_supplier"))
        names = sorted(set(p["electricity_supplier"].unique().drop_nulls().cast(pl.String).to_list())
                       | set(p["gas_supplier"].unique().drop_nulls().cast(pl.String).to_list())
                       | set(c["gaining_supplier"].drop_nulls().to_list()))
        self.names = names
        code = {n: i for i, n in enumerate(names)}
        self.premise = p["premise_index"].to_numpy()
        if len(self.premise) and np.any(np.diff(self.premise) == 0):
            raise UserError("the premises table repeats a premise_index; expected one row per premises",
                            file=str(log.root / "premises"))
        self.dense = None
        top = int(self.premise.max()) + 1 if len(self.premise) else 0
        if len(self.premise) and self.premise.min() >= 0 and top <= 4 * len(self.premise) + (1 << 20):
            self.dense = np.full(top, -1, dtype=np.int32)
            self.dense[self.premise] = np.arange(len(self.premise), dtype=np.int32)
        self.has_gas = p["has_gas"].fill_null(False).to_numpy()
        self.has_elec = p["has_electricity"].fill_null(False).to_numpy()
        self.initial = np.stack([_codes(p["electricity_supplier"], code), _codes(p["gas_supplier"], code)])
        pos = self._position(c["premise_index"].to_numpy())
        if np.any(pos < 0):
            raise UserError("supply_changes names a premise_index the premises table lacks",
                            file=str(log.root / "supply_changes"))
        fuel = (c["fuel"] == "gas").to_numpy().astype(np.int64)
        gaining = c["gaining_supplier"].replace_strict(code, default=-1, return_dtype=pl.Int32).to_numpy()
        self.changes = Timeline(pos.astype(np.int64) * 2 + fuel, c["occurred_at"].to_numpy(), gaining)

    def _position(self, premise_index: np.ndarray) -> np.ndarray:
        if self.dense is not None:  # premise numbers are compact: one array look-up
            inside = (premise_index >= 0) & (premise_index < len(self.dense))
            return np.where(inside, self.dense[np.where(inside, premise_index, 0)], -1)
        pos = np.searchsorted(self.premise, premise_index)
        pos = np.minimum(pos, max(len(self.premise) - 1, 0))
        found = len(self.premise) > 0
        ok = found & (self.premise[pos] == premise_index) if found else np.zeros(len(premise_index), bool)
        return np.where(ok, pos, -1)

    def supplier_at(self, premise_index: np.ndarray, fuel: np.ndarray, at: np.ndarray | int) -> np.ndarray:
        """The supplier code (index into ``names``; -1 for none or an unknown premises) of each
        premises for ``fuel`` (GAS or ELECTRICITY) at ``at``: the gaining supplier of its last
        change of supplier at or before ``at``, else its initial supplier (docs/event-log.md)."""
        return self._supplier_at(self._position(premise_index), fuel, at)

    def _supplier_at(self, pos: np.ndarray, fuel: np.ndarray, at: np.ndarray | int) -> np.ndarray:
        known = pos >= 0
        pos = np.maximum(pos, 0)
        result = self.changes.at(pos.astype(np.int64) * 2 + fuel, at, self.initial[fuel, pos])
        return np.where(known, result, -1)

    def codes(self, premise_index: np.ndarray, device_type: np.ndarray, at: np.ndarray | int) -> np.ndarray:
        """Supplier codes (index into ``names``; -1 for none) of devices at times ``at``: the
        Responsible Supplier (spec/003 §25: a GPF follows gas when a gas meter is on the hub).

        ``device_type`` holds TYPE_CODES values (GPF 0, ESME 1, GSME 2, other 3).
        """
        pos = self._position(premise_index)
        known = pos >= 0
        gas_meter = self.has_gas[np.maximum(pos, 0)]
        elec_meter = self.has_elec[np.maximum(pos, 0)]
        gsme, esme, gpf = device_type == 2, device_type == 1, device_type == 0
        fuel = np.where(gsme, GAS, np.where(esme, ELECTRICITY, np.where(gas_meter, GAS, ELECTRICITY)))
        has_fuel = known & np.where(gsme, gas_meter, np.where(esme, elec_meter, gpf & (gas_meter | elec_meter)))
        return np.where(has_fuel, self._supplier_at(pos, fuel, at), -1)

    def names_of(self, codes: np.ndarray) -> pl.Series:
        table = pl.Series("recipient", self.names + [None], dtype=pl.String)
        return table.gather(np.where(codes < 0, len(self.names), codes))


def with_recipient(frame: pl.DataFrame, index: SupplyIndex, at: str) -> pl.DataFrame:
    """Add ``recipient``: the Responsible Supplier of each row's device at the time in column ``at``."""
    if frame.height == 0:
        return frame.with_columns(pl.lit(None, dtype=pl.String).alias("recipient"))
    types = frame["device_type"].cast(pl.String).replace_strict(TYPE_CODES, default=3, return_dtype=pl.Int8)
    codes = index.codes(frame["premise_index"].to_numpy(), types.to_numpy(), frame[at].to_numpy())
    return frame.with_columns(index.names_of(codes).alias("recipient"))
