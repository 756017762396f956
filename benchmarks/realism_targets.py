"""Issue 11's realism targets, evaluated on a national event log with Polars queries of their own.

    .venv/bin/emrr simulate scenarios/national.yaml --out /tmp/realism/nat --workers 2 \\
        --calibration /tmp/realism/cal.json            # under /usr/bin/time -v > /tmp/realism/nat.time
    .venv/bin/python benchmarks/realism_targets.py --log /tmp/realism/nat --time /tmp/realism/nat.time \\
        --calibration /tmp/realism/cal.json

Each target is measured here over the whole log with lazy Polars queries written for this script
(not those of ``emrr.sim.calibration``, which reads the log part by part): the two should agree, and
the JSON records both where the calibration table has the figure. Prints each target, the value
measured and pass/fail, and writes ``benchmarks/results/realism.json`` (with the run's wall time and
peak memory read from ``/usr/bin/time -v``'s output when ``--time`` is given).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

try:
    from benchmarks import _common as common
except ImportError:  # run as a script: this folder is sys.path[0]
    import _common as common  # type: ignore[no-redef]

Q2_2024_END = dt.datetime(2024, 7, 1, tzinfo=dt.timezone.utc)


def scan(log: Path, table: str) -> pl.LazyFrame:
    folder = log / table
    return pl.scan_parquet(folder / "*.parquet" if folder.is_dir() else log / f"{table}.parquet")


def kind(name: str) -> pl.Expr:
    return pl.col("event_type").cast(pl.String) == name


def targets(log: Path) -> list[dict[str, Any]]:
    ev = scan(log, "events").filter(~pl.col("duplicate"))
    day = (pl.col("occurred_at").dt.epoch("s") // 86_400).alias("day")
    attempts = ev.filter(pl.col("attempt_number").is_not_null()).select(
        pl.col("device_index"), pl.col("premise_index"), pl.col("device_type").cast(pl.String).alias("type"),
        pl.col("occurred_at"), day, kind("migration_success").alias("ok"),
        (pl.col("error_kind").cast(pl.String) == "permanent").fill_null(False).alias("permanent"),
        pl.col("attempt_number").cast(pl.Int32).alias("n"), pl.col("tries"))
    out: list[dict[str, Any]] = []

    def target(item: str, what: str, value: float | None, ok: bool) -> None:
        out.append({"item": item, "target": what, "measured": value, "pass": bool(ok)})
        print(f"{'PASS' if ok else 'FAIL'}  {item:<5} {what:<80} {value if value is None else round(value, 4)}",
              flush=True)

    # 1. A persistent tail.
    c = attempts.select(attempted=(pl.col("n") == 1).sum(), migrated=pl.col("ok").sum(),
                        by_q2=(pl.col("ok") & (pl.col("occurred_at") < Q2_2024_END)).sum(),
                        three=(~pl.col("ok") & (pl.col("n") == 3)).sum(),  # a 3rd failure: the 1st and 2nd failed
                        first=(pl.col("ok") & (pl.col("tries") == 1)).sum())
    c = c.collect(engine="streaming").row(0, named=True)
    perm = attempts.filter(pl.col("permanent")).select("device_index", (pl.col("n") + 1).alias("n"),
                                                       pl.col("occurred_at").alias("t"))
    nxt = attempts.filter(pl.col("n") >= 2).select("device_index", "n", pl.col("occurred_at").alias("t2"), "ok")
    pairs = perm.join(nxt, on=["device_index", "n"]).collect()
    ups = ev.filter(kind("firmware_upgrade")).select("device_index", pl.col("occurred_at").alias("u")).collect()
    fixed = pairs.join(ups, on="device_index").filter((pl.col("u") > pl.col("t")) & (pl.col("u") <= pl.col("t2")))
    clean = pairs.join(fixed.select("device_index", "t").unique(), on=["device_index", "t"], how="anti")
    v = clean["ok"].mean()
    target("1", "after a permanent error, nothing fixed between: next attempt succeeds at most half the time", v,
           v is not None and v <= 0.5)
    v = 1 - c["migrated"] / c["attempted"]
    target("1", "0.5-5% of attempted devices not migrated at the end", v, 0.005 <= v <= 0.05)
    v = c["three"] / c["attempted"]
    target("1", "at least 0.1% of attempted devices fail three times or more", v, v >= 0.001)
    # 2. First try.
    v = c["first"] / c["migrated"]
    target("2", "at least 80% of successful sessions succeed on the first try", v, v >= 0.8)
    # 3. Pace.
    daily = (attempts.group_by("day").len().collect(engine="streaming").sort("day")
             .with_columns(pl.from_epoch(pl.col("day") * 86_400, time_unit="s").dt.date().alias("date"))
             .with_columns(pl.col("date").dt.weekday().alias("wd"), pl.col("date").dt.month().alias("m")))
    first_day = daily["day"].min()
    early = daily.filter(pl.col("day") < first_day + 14)["len"].sum() / 14
    monthly = daily.group_by(pl.col("date").dt.truncate("1mo").alias("mo")).agg(pl.col("len").sum(),
                                                                               pl.col("date").dt.month_end().first())
    busiest = (monthly["len"] / monthly["date"].dt.day()).max()
    v = early / busiest
    target("3", "ramp-up: first two weeks average at most half the busiest month's daily attempts", v, v <= 0.5)
    ordinary = daily.filter((pl.col("m") == 12) & (pl.col("wd") <= 5) & (pl.col("date").dt.day() <= 21))["len"].mean()
    xmas = daily.filter(pl.col("date") == dt.date(2023, 12, 25))["len"].sum()
    v = xmas / ordinary
    target("3", "25 December at most a fifth of an ordinary December weekday", v, v <= 0.2)
    holidays = [dt.date(2023, 8, 28), dt.date(2024, 3, 29), dt.date(2024, 4, 1), dt.date(2024, 5, 6),
                dt.date(2024, 5, 27)]
    hol = daily.filter(pl.col("date").is_in(holidays))["len"].mean()
    work = daily.filter((pl.col("wd") <= 5) & pl.col("m").is_in([9, 10, 11, 2, 3, 4, 5])
                        & ~pl.col("date").is_in(holidays))["len"].mean()
    v = hol / work
    target("3", "bank holidays quieter than working days (ratio below 0.5)", v, v < 0.5)
    steady = daily.filter((pl.col("wd") <= 5) & pl.col("m").is_in([10, 11, 2, 3, 4]))["len"]
    v = steady.std() / steady.mean()
    target("3", "coefficient of variation of weekday attempts at least 0.05 (Oct-Nov, Feb-Apr)", v, v >= 0.05)
    every = daily.filter(pl.col("wd") <= 5)["len"]
    v = every.std() / every.mean()
    target("3", "coefficient of variation of every weekday's attempts at least 0.05", v, v >= 0.05)
    # 4. Error codes.
    keys = ["device_type", "manufacturer", "model", "firmware_version"]
    fails = (ev.filter(kind("migration_failure")).group_by(
        *[pl.col(k).cast(pl.String) for k in keys],
        pl.concat_str([pl.col("error_code").cast(pl.String), pl.col("error_sub_code").cast(pl.String)],
                      separator="/").alias("err")).len().collect(engine="streaming"))
    nm = scan(log, "non_migratable").select(keys).collect()
    sig = (fails.join(nm, on=keys, how="semi").group_by(keys)
           .agg((pl.col("len").max() / pl.col("len").sum()).alias("top"), pl.col("len").sum().alias("n")))
    v = sig["top"].min()
    target("4", f"each Non-Migratable combination fails with one signature (>=90% one code; {sig.height} combos)",
           v, v is not None and v >= 0.9)
    per_type = fails.group_by("device_type", "err").agg(pl.col("len").sum())
    p = per_type.with_columns((pl.col("len") / pl.col("len").sum().over("device_type")).alias("p"))
    e = p.filter(pl.col("device_type") == "ESME").select("err", pl.col("p").alias("e"))
    g = p.filter(pl.col("device_type") == "GSME").select("err", pl.col("p").alias("g"))
    both = e.join(g, on="err", how="full", coalesce=True).fill_null(0)
    v = float((both["e"] - both["g"]).abs().sum() / 2)
    target("4", "ESME and GSME error mixes differ (total variation distance at least 0.1)", v, v >= 0.1)
    models = fails.group_by("device_type", "model", "err").agg(pl.col("len").sum()).with_columns(
        (pl.col("len") / pl.col("len").sum().over("device_type", "model")).alias("p"))
    esme_models = models.filter(pl.col("device_type") == "ESME").pivot(on="model", index="err", values="p").fill_null(0)
    cols = [x for x in esme_models.columns if x != "err"]
    v = max((float((esme_models[a] - esme_models[b]).abs().sum() / 2) for a in cols for b in cols), default=0.0)
    target("4", "error mix depends on the model (largest TVD between two ESME models above 0.05)", v, v > 0.05)
    # 5. Hubs.
    firsts = attempts.filter((pl.col("n") == 1) & pl.col("type").is_in(["ESME", "GSME"]))
    pair = (firsts.filter(pl.col("type") == "ESME").select("premise_index", pl.col("day").alias("de"))
            .join(firsts.filter(pl.col("type") == "GSME").select("premise_index", pl.col("day").alias("dg")),
                  on="premise_index").select(n=pl.len(), same=(pl.col("de") == pl.col("dg")).sum())
            .collect(engine="streaming").row(0, named=True))
    v = pair["same"] / pair["n"]
    target("5", "at least half of the premises with both meters have their first attempts the same day", v, v >= 0.5)
    gas = attempts.filter(pl.col("type") == "GSME").select("premise_index", "day", "ok")
    esme_failed = attempts.filter((pl.col("type") == "ESME") & ~pl.col("ok")).select("premise_index", "day").unique()
    base = 1 - gas.select(pl.col("ok").mean()).collect(engine="streaming").item()
    with_e = gas.join(esme_failed, on=["premise_index", "day"], how="semi").select(pl.col("ok").mean()).collect().item()
    without = (gas.join(esme_failed, on=["premise_index", "day"], how="anti").select(pl.col("ok").mean())
               .collect().item())
    v = (1 - with_e) / base
    target("5", "a GSME fails at least 3x as often when its ESME failed that day (vs all its attempts)", v, v >= 3)
    v = (1 - with_e) / (1 - without)
    target("5", "... and vs its attempts on days its ESME did not fail", v, v >= 3)
    # 6. Installs.
    ins = ev.filter(kind("install")).select(pl.col("occurred_at").alias("t"))
    r = ins.select(sun=(pl.col("t").dt.weekday() == 7).mean(),
                   hours=((pl.col("t").dt.hour() >= 7) & (pl.col("t").dt.hour() < 19)).mean())
    r = r.collect().row(0, named=True)
    target("6", "at most 5% of installs (install events) on Sundays", r["sun"], r["sun"] <= 0.05)
    target("6", "at least 85% of installs (install events) between 07:00 and 19:00", r["hours"], r["hours"] >= 0.85)
    prem = scan(log, "premises").filter(pl.col("installed_at").is_not_null()).select(
        sun=(pl.col("installed_at").dt.weekday() == 7).mean(),
        hours=((pl.col("installed_at").dt.hour() >= 7) & (pl.col("installed_at").dt.hour() < 19)).mean()
    ).collect().row(0, named=True)
    target("6", "premises installed: at most 5% on Sundays", prem["sun"], prem["sun"] <= 0.05)
    target("6", "premises installed: at least 85% between 07:00 and 19:00", prem["hours"], prem["hours"] >= 0.85)
    # 7. Suppliers.
    start = scan(log, "premises").filter(pl.col("installed_at").is_null())
    es = start.group_by(pl.col("electricity_supplier").cast(pl.String).alias("s")).len().drop_nulls().collect()
    gs = start.group_by(pl.col("gas_supplier").cast(pl.String).alias("s")).len().drop_nulls().collect()
    shares = (es.with_columns((pl.col("len") / pl.col("len").sum()).alias("e")).select("s", "e")
              .join(gs.with_columns((pl.col("len") / pl.col("len").sum()).alias("g")).select("s", "g"), on="s",
                    how="full", coalesce=True).fill_null(0))
    v = float((shares["e"] - shares["g"]).abs().max())
    target("7", "gas and electricity shares differ (largest gap above 0.01)", v, v > 0.01)
    v = float(shares.filter((pl.col("e") > 0) != (pl.col("g") > 0)).height)
    target("7", "at least one supplier sells one fuel only", v, v >= 1)
    esme = scan(log, "devices").filter((pl.col("device_type").cast(pl.String) == "ESME")).select(
        "premise_index", pl.col("manufacturer").cast(pl.String))
    fleet = (esme.join(start.select("premise_index", pl.col("electricity_supplier").cast(pl.String).alias("s")),
                       on="premise_index").group_by("s", "manufacturer").len().collect(engine="streaming"))
    top6 = es.sort("len", descending=True).head(6)["s"]
    top = (fleet.filter(pl.col("s").is_in(top6.implode())).group_by("s")
           .agg((pl.col("len").max() / pl.col("len").sum()).alias("top")))
    v = float(top["top"].max() - top["top"].min())
    target("7", "top ESME manufacturer's share varies by at least 0.15 across the six largest suppliers", v, v >= 0.15)
    # 8. Skips and changes of supplier.
    sw = scan(log, "supply_changes").select("premise_index", pl.col("occurred_at").alias("c")).collect()
    rate = {}
    for name in ("prevalidation_skip", "migration_success"):
        x = ev.filter(kind(name)).select("event_id", "premise_index", pl.col("occurred_at").alias("t"))
        n = x.select(pl.len()).collect(engine="streaming").item()
        hit = (x.join(sw.lazy(), on="premise_index")
               .filter((pl.col("c") > pl.col("t")) & (pl.col("c") <= pl.col("t") + pl.duration(days=14)))
               .select(pl.col("event_id").n_unique()).collect().item())
        rate[name] = hit / n
    v = rate["prevalidation_skip"] / rate["migration_success"]
    target("8", "a skip at least 5x as likely as a success to be followed by a change of supplier within 14 days",
           v, v >= 5)
    # 9. Identifiers.
    d = (scan(log, "premises").select(pl.col("mpan").str.slice(0, 2).alias("d")).drop_nulls().group_by("d").len()
         .collect(engine="streaming"))
    v = float(d["len"].max() / d["len"].min())
    target("9", f"distributor areas sized unequally: largest at least twice the smallest ({d.height} areas)", v, v >= 2)
    pre = (scan(log, "devices").group_by(pl.col("manufacturer").cast(pl.String), pl.col("device_id").str.slice(0, 8)
                                         .alias("p")).len().collect(engine="streaming"))
    per = pre.group_by("manufacturer").agg(pl.col("p").n_unique().alias("k"), pl.col("p").first())
    ok = bool((per["k"] == 1).all() and per["p"].n_unique() == per.height)
    target("9", f"each manufacturer's device IDs share its own EUI-64 prefix ({per.height} manufacturers)",
           float(per["k"].max()), ok)
    # 10. TCoS installs.
    new = (scan(log, "devices").filter(pl.col("installed_at").is_not_null())
           .group_by(pl.col("installed_at").dt.truncate("1mo").alias("mo"))
           .agg(pl.len().alias("n"), (~pl.col("ecos_credentials_at_install")).sum().alias("tcos"))
           .collect(engine="streaming").sort("mo").with_columns((pl.col("tcos") / pl.col("n")).alias("share")))
    first_share, last_share = float(new["share"][0]), float(new["share"][-2])
    target("10", f"TCoS share of new installs falls (first month {first_share:.3f}, last full month "
           f"{last_share:.3f})", first_share - last_share, first_share > last_share > -1 and first_share > 0)
    tc = scan(log, "devices").filter(pl.col("installed_at").is_not_null() & ~pl.col("ecos_credentials_at_install")
                                     & (pl.col("installed_at") < pl.lit(dt.datetime(2024, 5, 1,
                                                                                    tzinfo=dt.timezone.utc))))
    n = tc.select(pl.len()).collect().item()
    att = tc.join(attempts.filter(pl.col("n") == 1).select("device_index"), on="device_index", how="semi").select(
        pl.len()).collect(engine="streaming").item()
    v = att / n if n else None
    target("10", f"devices installed with TCoS credentials (before May 2024: {n:,}) join the migration", v,
           v is not None and v >= 0.9)
    # 11. What held.
    dev = (scan(log, "devices").filter(pl.col("installed_at").is_null()).group_by(
        pl.col("device_type").cast(pl.String)).len().collect())
    total = int(dev["len"].sum())
    target("11", "27-30M devices with TCoS credentials at go-live", float(total), 27e6 <= total <= 30e6)
    v = c["by_q2"] / c["attempted"]
    target("11", "migration complete by Q2 2024 for at least 95% of the devices attempted", v, v >= 0.95)
    elec = scan(log, "premises").select(pl.col("has_electricity").sum()).collect().item()
    n = scan(log, "supply_changes").filter(pl.col("fuel").cast(pl.String) == "electricity").select(
        pl.len()).collect().item()
    v = n / elec / (366 / 365.25)
    target("11", "switching per premises: electricity changes a premises-year 0.08-0.09 (FACTS.md, +-10%)", v,
           0.072 <= v <= 0.099)
    target("11", "shares: largest electricity supplier 24% (FACTS.md, +-10%)", float(es["len"].max() / es["len"].sum()),
           0.216 <= es["len"].max() / es["len"].sum() <= 0.264)
    return out


def read_time(path: Path) -> dict[str, Any]:
    """Wall time and peak RSS from ``/usr/bin/time -v``'s output."""
    text = path.read_text(encoding="utf-8", errors="replace")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    command = re.search(r'Command being timed: "(.*)"', text)
    seconds = None
    if wall:
        h, m, s = wall.groups()
        seconds = int(h or 0) * 3600 + int(m) * 60 + float(s)
    cpu = {k: float(m.group(1)) for k, pattern in (("user_seconds", r"User time \(seconds\): ([\d.]+)"),
                                                   ("system_seconds", r"System time \(seconds\): ([\d.]+)"),
                                                   ("cpu_percent", r"Percent of CPU this job got: (\d+)%"))
           if (m := re.search(pattern, text))}
    return {"command": command.group(1) if command else None, "wall_seconds": seconds, **cpu,
            "load_average_at_report": Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists()
            else None,
            "peak_rss_bytes": int(rss.group(1)) * 1024 if rss else None,
            "within_targets": bool(seconds is not None and seconds <= 90 and rss and int(rss.group(1)) * 1024 <= 3e9)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", required=True, type=Path, help="a national event log (emrr simulate --out)")
    parser.add_argument("--time", type=Path, help="/usr/bin/time -v output of the simulate run")
    parser.add_argument("--calibration", type=Path, help="the run's --calibration JSON, recorded beside")
    parser.add_argument("--out", type=Path, default=common.RESULTS_DIR / "realism.json")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = targets(args.log)
    result = {**common.provenance("realism", quick=False), "event_log": str(args.log),
              "targets": rows, "passed": sum(r["pass"] for r in rows), "total": len(rows),
              "query_seconds": round(time.perf_counter() - started, 1)}
    if args.time:
        result["simulate"] = read_time(args.time)
    if args.calibration:
        table = json.loads(args.calibration.read_text(encoding="utf-8"))
        result["calibration"] = [{k: r[k] for k in ("id", "measured", "tolerance", "within")}
                                 for r in table["figures"]]
    common.write_json_atomic(args.out, result)
    print(f"{result['passed']} of {result['total']} targets pass; written to {args.out}")
    return 0 if result["passed"] == result["total"] else 1


if __name__ == "__main__":
    sys.exit(main())
