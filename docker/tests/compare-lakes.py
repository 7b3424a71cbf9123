#!/usr/bin/env python3
"""Checks that two lakes hold the same tables, row for row (DuckDB).

    compare-lakes.py EXPECTED_LAKE ACTUAL_LAKE [--tables a,b] [--except a,b]

Each table is a Delta table: its current version is read with the
`deltalake` package (delta-rs; `pip install deltalake`) and compared in
DuckDB. Without --tables both lakes must hold the same set
of tables. Rows are compared as multisets (EXCEPT ALL both ways) with float
columns rounded to 10 significant digits; rows that differ only because a
value fell on either side of a rounding boundary are then matched with a
relative tolerance. Prints one line per table; exits 1 when any differs.
"""

import argparse
import math
import sys
from collections import defaultdict
from pathlib import Path

import duckdb
from deltalake import DeltaTable

FLOAT_TYPES = {"FLOAT", "DOUBLE", "REAL"}
REL_TOL = 1e-9
ABS_TOL = 1e-12
SHOWN = 5


def tables_of(lake: Path) -> set[str]:
    root = lake / "tables"
    return {p.name for p in root.iterdir() if (p / "_delta_log").is_dir()} if root.is_dir() else set()


def delta(lake: Path, table: str) -> DeltaTable:
    return DeltaTable(str(lake / "tables" / table))


def has_files(lake: Path, table: str) -> bool:
    return len(delta(lake, table).file_uris()) > 0


CON = duckdb.connect()
REGISTERED: dict[tuple[str, str], str] = {}


def source(lake: Path, table: str) -> str:
    """The table's current version, registered in DuckDB (once) under a view name."""
    key = (str(lake), table)
    if key not in REGISTERED:
        name = f"t{len(REGISTERED)}"
        CON.register(name, delta(lake, table).to_pyarrow_table())
        REGISTERED[key] = name
    return REGISTERED[key]


def schema(con, lake: Path, table: str) -> dict[str, str]:
    rows = con.execute(f"DESCRIBE SELECT * FROM {source(lake, table)}").fetchall()
    return {name: kind for name, kind, *_ in rows}


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def rounded(columns: dict[str, str], aliased: bool = True) -> str:
    """Columns in name order, floats as text with 10 significant digits."""
    parts = []
    for name in sorted(columns):
        col = quote(name)
        if columns[name] in FLOAT_TYPES:
            parts.append(f"printf('%.9e', {col})" + (f" AS {col}" if aliased else ""))
        else:
            parts.append(col)
    return ", ".join(parts)


def close(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def match_with_tolerance(missing, extra, float_idx) -> tuple[list, list]:
    """Pairs rows that are equal except for floats within the tolerance."""
    def key(row):
        return tuple(v for i, v in enumerate(row) if i not in float_idx)

    pool = defaultdict(list)
    for row in extra:
        pool[key(row)].append(row)
    unmatched = []
    for row in missing:
        candidates = pool.get(key(row), [])
        hit = next(
            (c for c in candidates if all(close(row[i], c[i]) for i in float_idx)),
            None,
        )
        if hit is None:
            unmatched.append(row)
        else:
            candidates.remove(hit)
    left = [r for rows in pool.values() for r in rows]
    return unmatched, left


def compare_table(con, expected: Path, actual: Path, table: str) -> tuple[bool, str]:
    e_files, a_files = has_files(expected, table), has_files(actual, table)
    if not e_files or not a_files:
        if e_files == a_files:
            return True, "no data files on either side"
        return False, f"data files only in {'expected' if e_files else 'actual'}"
    e_schema, a_schema = schema(con, expected, table), schema(con, actual, table)
    if e_schema != a_schema:
        return False, f"schemas differ: expected {e_schema}, actual {a_schema}"
    e_src, a_src = source(expected, table), source(actual, table)
    e_rows = con.execute(f"SELECT count(*) FROM {e_src}").fetchall()[0][0]
    a_rows = con.execute(f"SELECT count(*) FROM {a_src}").fetchall()[0][0]
    if e_rows != a_rows:
        return False, f"{a_rows} rows, expected {e_rows}"
    cols = rounded(e_schema)
    diff = "SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b}"
    only_e = con.execute(f"SELECT count(*) FROM ({diff.format(cols=cols, a=e_src, b=a_src)})").fetchall()[0][0]
    only_a = con.execute(f"SELECT count(*) FROM ({diff.format(cols=cols, a=a_src, b=e_src)})").fetchall()[0][0]
    if only_e == 0 and only_a == 0:
        return True, f"{e_rows} rows equal"
    # Rounding boundaries: fetch the rows of every differing (rounded) value,
    # unrounded, from both sides and pair them up with a tolerance.
    if only_e + only_a > 20000:
        return False, f"{only_e} expected rows missing, {only_a} unexpected rows"
    names = sorted(e_schema)
    float_idx = {i for i, n in enumerate(names) if e_schema[n] in FLOAT_TYPES}
    plain = ", ".join(quote(n) for n in names)
    keys = (
        f"SELECT CAST(ROW({plain}) AS VARCHAR) FROM ({diff.format(cols=cols, a=e_src, b=a_src)}) "
        f"UNION SELECT CAST(ROW({plain}) AS VARCHAR) FROM ({diff.format(cols=cols, a=a_src, b=e_src)})"
    )
    key_of_row = f"CAST(ROW({rounded(e_schema, aliased=False)}) AS VARCHAR)"

    def rows_with_keys(src):
        return con.execute(f"SELECT {plain} FROM {src} WHERE {key_of_row} IN ({keys})").fetchall()

    missing, extra = match_with_tolerance(rows_with_keys(e_src), rows_with_keys(a_src), float_idx)
    if not missing and not extra:
        return True, f"{e_rows} rows equal ({only_e} within a relative {REL_TOL:g})"
    lines = [f"{len(missing)} expected rows missing, {len(extra)} unexpected rows (columns {names})"]
    lines += [f"    missing: {r}" for r in missing[:SHOWN]]
    lines += [f"    unexpected: {r}" for r in extra[:SHOWN]]
    return False, "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("expected", type=Path)
    parser.add_argument("actual", type=Path)
    parser.add_argument("--tables", help="compare only these tables (comma-separated)")
    parser.add_argument("--except", dest="excluded", default="", help="leave out these tables")
    args = parser.parse_args()

    expected, actual = tables_of(args.expected), tables_of(args.actual)
    excluded = {t for t in args.excluded.split(",") if t}
    ok = True
    if args.tables:
        wanted = {t for t in args.tables.split(",") if t} - excluded
        for table in sorted(wanted - expected - actual):
            print(f"not in either lake: {table}")
            ok = False
    else:
        wanted = (expected | actual) - excluded
    if not expected & wanted and not actual & wanted:
        print("no tables to compare")
        return 1
    con = CON
    for table in sorted(wanted):
        if table not in expected or table not in actual:
            where = "expected" if table in expected else "actual"
            print(f"DIFFERENT {table}: only in the {where} lake")
            ok = False
            continue
        same, detail = compare_table(con, args.expected, args.actual, table)
        print(f"{'same' if same else 'DIFFERENT'} {table}: {detail}")
        ok &= same
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
