"""Who receives a record: the Responsible Supplier of a device at a moment (DESIGN.md "Recipient").

ESME: the electricity supplier; GSME: the gas supplier; GPF: the gas supplier when a gas meter is
connected to the hub, else the electricity (import) supplier, else nobody (spec/003 §25 a-c).
The supplier of a premises and fuel at ``t`` is the gaining supplier of its last change of
supplier at or before ``t``, else its initial supplier (docs/event-log.md).
"""

from __future__ import annotations

import polars as pl

from rules.eventlog import EventLog


def device_fuel() -> pl.Expr:
    """The fuel whose supplier is responsible for the device (needs has_gas, has_electricity)."""
    kind = pl.col("device_type")
    return (pl.when(kind == "ESME").then(pl.lit("electricity"))
            .when(kind == "GSME").then(pl.lit("gas"))
            .when((kind == "GPF") & pl.col("has_gas")).then(pl.lit("gas"))
            .when((kind == "GPF") & pl.col("has_electricity")).then(pl.lit("electricity"))
            .otherwise(pl.lit(None, dtype=pl.String)))


def with_recipient(frame: pl.DataFrame, log: EventLog, at: str) -> pl.DataFrame:
    """Add ``recipient``: the Responsible Supplier of each row's device at the time in column ``at``.

    ``frame`` needs premise_index and device_type; rows keep their order.
    """
    if frame.height == 0:
        return frame.with_columns(pl.lit(None, dtype=pl.String).alias("recipient"))
    premises = (log.tables["premises"]
                .select("premise_index", "has_gas", "has_electricity", "electricity_supplier", "gas_supplier")
                .join(frame.lazy().select("premise_index").unique(), on="premise_index", how="semi")
                .collect())
    keyed = (frame.with_row_index("_row")
             .join(premises, on="premise_index", how="left")
             .with_columns(device_fuel().alias("_fuel")))
    changes = (log.tables["supply_changes"]
               .select("premise_index", pl.col("fuel").alias("_fuel"),
                       pl.col("occurred_at").alias("_changed_at"), "gaining_supplier")
               .join(frame.lazy().select("premise_index").unique(), on="premise_index", how="semi")
               .sort("_changed_at")
               .collect())
    keyed = keyed.with_columns(pl.col(at).cast(pl.Int64).alias("_at")).sort("_at")
    joined = keyed.join_asof(changes, left_on="_at", right_on="_changed_at", by=["premise_index", "_fuel"],
                             strategy="backward", check_sortedness=False)
    initial = (pl.when(pl.col("_fuel") == "gas").then(pl.col("gas_supplier"))
               .when(pl.col("_fuel") == "electricity").then(pl.col("electricity_supplier")))
    recipient = pl.when(pl.col("_fuel").is_null()).then(pl.lit(None, dtype=pl.String)).otherwise(
        pl.coalesce(pl.col("gaining_supplier"), initial))
    return (joined.with_columns(recipient.alias("recipient"))
            .sort("_row")
            .drop("_row", "_fuel", "_at", "_changed_at", "gaining_supplier", "has_gas", "has_electricity",
                  "electricity_supplier", "gas_supplier"))
