"""Stored candles out, through pandas (the boundary): CSV with exact decimals, or Parquet
with decimal columns, times in IST, and each candle's provider and fetch time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

COLUMNS = ["time", "open", "high", "low", "close", "volume", "provider", "fetched_at"]
Row = tuple[datetime, Decimal, Decimal, Decimal, Decimal, int, str, datetime]


def frame(rows: Sequence[Row]) -> Any:
    import pandas as pd

    return pd.DataFrame.from_records(list(rows), columns=COLUMNS)


def write_candles(rows: Sequence[Row], fmt: str, out: Path | IO[str]) -> None:
    df = frame(rows)
    if fmt == "csv":
        df["time"] = df["time"].map(lambda t: t.isoformat())
        df["fetched_at"] = df["fetched_at"].map(lambda t: t.isoformat(timespec="seconds"))
        for col in ("open", "high", "low", "close"):
            df[col] = df[col].map(str)  # exact: no float formatting on the way out
        df.to_csv(out, index=False)
        return
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not isinstance(out, Path):
            raise ValueError("Parquet is written to a file")
        scale = max((_places(p) for r in rows for p in (r[1], r[2], r[3], r[4])), default=2)
        price = pa.decimal128(18, scale)
        schema = pa.schema([
            ("time", pa.timestamp("us", tz="Asia/Kolkata")), ("open", price), ("high", price),
            ("low", price), ("close", price), ("volume", pa.int64()), ("provider", pa.string()),
            ("fetched_at", pa.timestamp("us", tz="Asia/Kolkata")),
        ])
        table = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
        pq.write_table(table, out)
        return
    raise ValueError(f"unknown format {fmt!r}: csv or parquet")


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0
