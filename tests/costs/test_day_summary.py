"""``dalal charges day``: the journaled day's orders with their charges, from the profile."""

from __future__ import annotations

import argparse
from datetime import datetime
from decimal import Decimal as D
from pathlib import Path

import pytest

from app import cli
from app.commands.vault import unlock
from services.clock import IST
from services.domain import Fill, Order, OrderRequest, OrderStatus, OrderType, Product, Side
from services.storage.journal import OrderJournal
from tests.keyrings import MemoryKeyring


def _journal_an_option_round_trip(tmp_path: Path) -> list[str]:
    """A profile whose journal holds one NIFTY option bought at 100 and sold at 110 on
    10 Jun 2026; the profile arguments for ``dalal``."""
    where = ["--data-dir", str(tmp_path / "d"), "--cache-dir", str(tmp_path / "c"),
             "--kdf-time-cost", "1"]
    args = argparse.Namespace(profile="default", data_dir=tmp_path / "d",
                              cache_dir=tmp_path / "c", key_fd=None, key_credential=None,
                              kdf_time_cost=1)
    _vault, db = unlock(args)
    at = datetime(2026, 6, 10, 10, 0, tzinfo=IST)
    journal = OrderJournal(db)
    for n, (side, price) in enumerate([(Side.BUY, "100"), (Side.SELL, "110")], 1):
        request = OrderRequest("NFO:NIFTY26JUN25000CE", side, 75, OrderType.MARKET,
                               Product.NRML, tag=f"T{n}")
        order = Order(f"PA{n:06d}", request, OrderStatus.FILLED, at, at, 75, D(price))
        journal.record_intent(order)
        journal.record_fill_and_order(
            Fill(f"PT{n:06d}", order.order_id, request.key, side, Product.NRML, 75, D(price),
                 at), order)
    db.close()
    return where


def test_day_summary_lists_each_order_with_its_charges(
    tmp_path: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    where = _journal_an_option_round_trip(tmp_path)
    rc = cli.main(["charges", "day", "--date", "2026-06-10", *where])
    out = capsys.readouterr().out
    assert rc == 0, out
    total = next(line for line in out.splitlines() if line.startswith("total"))
    # The worked Zerodha example of tests/costs/test_charges.py: 66.06 in all.
    assert total.split()[-1] == "66.06"
    assert "PA000001" in out and "PA000002" in out
    assert "hypothetical" not in out and "not checked" not in out  # all checked at Zerodha


def test_day_summary_says_when_the_tariff_is_hypothetical_or_partly_unchecked(
    tmp_path: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]
) -> None:
    where = _journal_an_option_round_trip(tmp_path)
    assert cli.main(["charges", "day", "--date", "2026-06-10", "--tariff", "flat20",
                     *where]) == 0
    assert "(flat20 is a hypothetical tariff, no broker's" in capsys.readouterr().out
    assert cli.main(["charges", "day", "--date", "2026-06-10", "--tariff", "breeze",
                     *where]) == 0
    assert "(not checked against breeze's own published tariff: EQ_DELIVERY)" in (
        capsys.readouterr().out)
    assert cli.main(["charges", "day", "--date", "2026-06-10", "--tariff", "nobody",
                     *where]) == 2
    assert "no brokerage tariff for 'nobody'" in capsys.readouterr().err
