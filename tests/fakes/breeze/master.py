"""A small ``SecurityMaster.zip`` in ICICI's layout (headers verbatim from the real files).

The F&O expiry is the last Tuesday of the month (NSE's monthly expiry), taken from today so
that the contracts are always live; a weekly expiry a week earlier exercises weekly symbols.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from datetime import date, timedelta

NSE_HEADER = (
    '"Token", "ShortName", "Series", "CompanyName", "ticksize", "Lotsize", "DateOfListing", '
    '"DateOfDeListing", "IssuePrice", "FaceValue", "ISINCode", "52WeeksHigh", "52WeeksLow", '
    '"LifeTimeHigh", "LifeTimeLow", "HighDate", "LowDate", "Symbol", "InstrumentType", '
    '"ExchangeCode"'
)
FO_HEADER = (
    '"Token","InstrumentName","ShortName","Series","ExpiryDate","StrikePrice","OptionType",'
    '"CALevel","PermittedToTrade","IssueCapital","WarningQty","FreezeQty","CreditRating",'
    '"NormalMarketStatus","OddLotMarketStatus","SpotMarketStatus","AuctionMarketStatus",'
    '"NormalMarketEligibility","OddLotMarketEligibility","SpotMarketEligibility",'
    '"AuctionMarketEligibility","IssueRate","IssueStartDate","InterestPaymentDate",'
    '"IssueMaturityDate","MarginPercentage","MinimumLotQty","LotSize","TickSize","CompanyName",'
    '"ExchangeCode"'
)


@dataclass(frozen=True)
class Scrip:
    """One instrument of the fake market: what the master says and its price."""

    exchange: str  # NSE, BSE, NFO
    token: str
    stock_code: str
    symbol: str  # exchange symbol (ExchangeCode column) or the underlying's
    company: str
    tick: str  # rupees
    lot: int
    last_price: str
    instrument: str = ""  # FUTIDX / FUTSTK / OPTIDX / OPTSTK for F&O
    expiry: date | None = None
    strike: str = "0"
    option_type: str = "XX"
    freeze: int = 0
    series: str = "EQ"

    @property
    def product(self) -> str:
        if self.exchange in ("NSE", "BSE"):
            return "cash"
        return "futures" if self.instrument.startswith("FUT") else "options"

    @property
    def right(self) -> str:
        return {"CE": "call", "PE": "put"}.get(self.option_type, "others")


def monthly_expiry(today: date) -> date:
    """The last Tuesday of this month, or of next month once this one has passed."""

    def last_tuesday(year: int, month: int) -> date:
        nxt = date(year + (month == 12), month % 12 + 1, 1)
        day = nxt - timedelta(days=1)
        return day - timedelta(days=(day.weekday() - 1) % 7)

    expiry = last_tuesday(today.year, today.month)
    if expiry < today + timedelta(days=8):
        month = today.month % 12 + 1
        expiry = last_tuesday(today.year + (today.month == 12), month)
    return expiry


def default_scrips(today: date) -> list[Scrip]:
    expiry = monthly_expiry(today)
    weekly = expiry - timedelta(days=7)
    return [
        Scrip("NSE", "2885", "RELIND", "RELIANCE", "RELIANCE INDUSTRIES", "0.10", 1, "2950.40"),
        Scrip("NSE", "1594", "INFTEC", "INFY", "INFOSYS LIMITED", "0.10", 1, "1573.70"),
        Scrip("NSE", "3045", "STABAN", "SBIN", "STATE BANK OF INDIA", "0.05", 1, "812.40"),
        Scrip("NSE", "NIFTY 50", "NIFTY", "NIFTY 50", "NIFTY 50", "0", 1, "24350.15", series="0"),
        Scrip("BSE", "500325", "RELIND", "RELIANCE", "RELIANCE INDUSTRIES", "0.05", 1, "2950.10"),
        Scrip(
            "NFO",
            "68407",
            "NIFTY",
            "NIFTY 50",
            "NIFTY 50",
            "0.10",
            75,
            "24410.00",
            "FUTIDX",
            expiry,
            freeze=1800,
        ),
        Scrip(
            "NFO",
            "35001",
            "NIFTY",
            "NIFTY 50",
            "NIFTY 50",
            "0.05",
            75,
            "120.50",
            "OPTIDX",
            expiry,
            "24500",
            "CE",
            1800,
        ),
        Scrip(
            "NFO",
            "35002",
            "NIFTY",
            "NIFTY 50",
            "NIFTY 50",
            "0.05",
            75,
            "98.25",
            "OPTIDX",
            expiry,
            "24300",
            "PE",
            1800,
        ),
        Scrip(
            "NFO",
            "35003",
            "NIFTY",
            "NIFTY 50",
            "NIFTY 50",
            "0.05",
            75,
            "60.10",
            "OPTIDX",
            weekly,
            "24600",
            "CE",
            1800,
        ),
        Scrip(
            "NFO",
            "36342",
            "RELIND",
            "RELIANCE",
            "RELIANCE INDUSTRIES",
            "0.05",
            500,
            "55.30",
            "OPTSTK",
            expiry,
            "3000",
            "CE",
            10000,
        ),
    ]


def _cash_row(s: Scrip) -> str:
    return (
        f'"{s.token}","{s.stock_code}","{s.series}","{s.company}",{s.tick},{s.lot},"","",0,10,'
        f'"INE000000000",0,0,0,0,"","","",0,"{s.symbol}"'
    )


def _fo_row(s: Scrip) -> str:
    assert s.expiry is not None
    tick_paise = int((float(s.tick) * 100) + 0.5)
    series = "FUTURE" if s.instrument.startswith("FUT") else "OPTION"
    return (
        f'"{s.token}","{s.instrument}","{s.stock_code}","{series}",'
        f'"{s.expiry.strftime("%d-%b-%Y")}","{s.strike}","{s.option_type}",0,0,0,0,{s.freeze},"",'
        f'0,0,0,0,"","","","",0,"","","",0,0,{s.lot},{tick_paise},"{s.company}","{s.symbol}"'
    )


def build_master_zip(scrips: list[Scrip]) -> bytes:
    files = {
        "NSEScripMaster.txt": [NSE_HEADER] + [_cash_row(s) for s in scrips if s.exchange == "NSE"],
        "BSEScripMaster.txt": [NSE_HEADER] + [_cash_row(s) for s in scrips if s.exchange == "BSE"],
        "FONSEScripMaster.txt": [FO_HEADER] + [_fo_row(s) for s in scrips if s.exchange == "NFO"],
        "FOBSEScripMaster.txt": [FO_HEADER] + [_fo_row(s) for s in scrips if s.exchange == "BFO"],
        # Segments the terminal does not trade: present in the real zip, skipped by the parser.
        "MCXScripMaster.txt": ['"Token","InstrumentName","ShortName"', '"1","FUTCOM","GOLD"'],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, lines in files.items():
            archive.writestr(name, "\n".join(lines) + "\n")
    return buffer.getvalue()
