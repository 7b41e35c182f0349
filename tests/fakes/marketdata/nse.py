"""NSE as a script sees it: cookies from a warm-up visit, JSON behind them, a bot wall that
answers 403, and the archives' UDiFF bhavcopy zips and lot-size file."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from services.calendar import IST, default_calendar
from tests.fakes.marketdata.data import ohlcv
from tests.fakes.marketdata.server import html_page

if TYPE_CHECKING:
    from tests.fakes.marketdata.server import FakeMarketData

UDIFF_COLUMNS = [
    "TradDt", "BizDt", "Sgmt", "Src", "FinInstrmTp", "FinInstrmId", "ISIN", "TckrSymb",
    "SctySrs", "XpryDt", "FininstrmActlXpryDt", "StrkPric", "OptnTp", "FinInstrmNm", "OpnPric",
    "HghPric", "LwPric", "ClsPric", "LastPric", "PrvsClsgPric", "UndrlygPric", "SttlmPric",
    "OpnIntrst", "ChngInOpnIntrst", "TtlTradgVol", "TtlTrfVal", "TtlNbOfTxsExctd", "SsnId",
    "NewBrdLotQty", "Rmks", "Rsvd1", "Rsvd2", "Rsvd3", "Rsvd4",
]
CASH = ["INFY", "RELIANCE", "TCS", "SBIN", "HDFCBANK"]
FUTURES = ["NIFTY26MARFUT", "BANKNIFTY26MARFUT", "INFY26MARFUT"]
COOKIES = {"nsit": "fake-nsit", "nseappid": "fake-appid"}
PUBLISH_HOUR = 17  # a day's bhavcopy appears after the close


def _row(day: date, segment: str, symbol: str, name: str, kind: str) -> dict[str, str]:
    session = default_calendar().session(day)
    assert session is not None
    o, h, lo, c, v = ohlcv(symbol, session.opens_at.timestamp(), 22_500)
    row = dict.fromkeys(UDIFF_COLUMNS, "")
    row.update({
        "TradDt": day.isoformat(), "BizDt": day.isoformat(), "Sgmt": segment, "Src": "NSE",
        "FinInstrmTp": kind, "TckrSymb": symbol, "SctySrs": "EQ" if segment == "CM" else "",
        "FinInstrmNm": name, "OpnPric": f"{o:.2f}", "HghPric": f"{h:.2f}",
        "LwPric": f"{lo:.2f}", "ClsPric": f"{c:.2f}", "LastPric": f"{c:.2f}",
        "TtlTradgVol": str(v * 100), "SsnId": "F1", "NewBrdLotQty": "1",
    })
    return row


def bhavcopy_zip(day: date, segment: str) -> bytes:
    rows = []
    if segment == "cm":
        rows = [_row(day, "CM", s, s, "STK") for s in CASH]
        rows.append({**_row(day, "CM", "INFY", "INFY", "STK"), "SctySrs": "BL"})  # block deals
    else:
        rows = [_row(day, "FO", n.split("26")[0], n, "IDF" if "NIFTY" in n else "STF")
                for n in FUTURES]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=UDIFF_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    blob = io.BytesIO()
    name = f"BhavCopy_NSE_{segment.upper()}_0_0_0_{day:%Y%m%d}_F_0000.csv"
    with zipfile.ZipFile(blob, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, text.getvalue())
    return blob.getvalue()


LOT_FILE = (
    "UNDERLYING                                        ,SYMBOL    ,MAR-26    ,APR-26    ,"
    "MAY-26    \n"
    "Derivatives on Individual Securities              ,Symbol    ,          ,          ,"
    "          \n"
    "NIFTY 50                                          ,NIFTY     ,65        ,65        ,"
    "65        \n"
    "NIFTY BANK                                        ,BANKNIFTY ,30        ,30        ,"
    "30        \n"
    "INFOSYS LIMITED                                   ,INFY      ,400       ,400       ,"
    "          \n"
)


class FakeNse:
    def __init__(self, server: FakeMarketData) -> None:
        self.server = server
        self.warmups = 0
        self.holiday_payload: dict[str, Any] = {
            "CBM": [{"tradingDate": "26-Jan-2026", "description": "Republic Day"}],
            "CM": [
                {"tradingDate": "26-Jan-2026", "weekDay": "Monday",
                 "description": "Republic Day", "Sr_no": 1},
                {"tradingDate": "03-Mar-2026", "weekDay": "Tuesday", "description": "Holi",
                 "Sr_no": 2},
            ],
        }

    async def handle(self, request: web.Request, host: str, path: str) -> web.StreamResponse:
        fault = self.server.take_fault("nse")
        if fault == "403":
            return web.Response(status=403, content_type="text/html",
                                text="<HTML><HEAD><TITLE>Access Denied</TITLE></HEAD></HTML>")
        if fault == "500":
            return web.Response(status=503, text="Service Unavailable")
        if host == "nsearchives.nseindia.com":
            return self._archive(path, fault)
        if not path.startswith("/api/"):
            self.warmups += 1
            response = web.Response(text="<html>NSE</html>", content_type="text/html")
            for name, value in COOKIES.items():
                response.set_cookie(name, value, path="/")
            return response
        if any(request.cookies.get(k) != v for k, v in COOKIES.items()):
            return web.json_response({}, status=401)
        if fault == "html":
            return html_page()
        if path == "/api/holiday-master":
            return web.json_response(self.holiday_payload)
        if path == "/api/quote-equity":
            return self._quote(request.query.get("symbol", ""))
        if path == "/api/option-chain-v3":
            return web.json_response({"records": {"expiryDates": [request.query.get("expiry")],
                                                  "data": []}, "filtered": {"data": []}})
        return web.json_response({}, status=404)

    def _archive(self, path: str, fault: str | None) -> web.StreamResponse:
        if path == "/content/fo/fo_mktlots.csv":
            return web.Response(text=LOT_FILE, content_type="text/csv")
        for segment in ("cm", "fo"):
            prefix = f"/content/{segment}/BhavCopy_NSE_{segment.upper()}_0_0_0_"
            if path.startswith(prefix):
                day = datetime.strptime(path[len(prefix):len(prefix) + 8], "%Y%m%d").date()
                published = datetime.combine(day, datetime.min.time(), IST).replace(
                    hour=PUBLISH_HOUR)
                if default_calendar().session(day) is None or published > self.server.now:
                    return web.Response(status=404, text="Not Found")
                if fault == "html":
                    return html_page()
                if fault == "garbage":
                    return web.Response(body=b"PK\x03\x04broken", content_type="application/zip")
                return web.Response(body=bhavcopy_zip(day, segment),
                                    content_type="application/zip")
        return web.Response(status=404, text="Not Found")

    def _quote(self, symbol: str) -> web.StreamResponse:
        if symbol not in CASH:
            return web.json_response({}, status=404)
        now = self.server.now
        o, h, lo, c, _ = ohlcv(symbol, now.timestamp() - 900, 60)
        return web.json_response({
            "info": {"symbol": symbol, "companyName": symbol, "isFNOSec": True},
            "metadata": {"series": "EQ", "symbol": symbol,
                         "lastUpdateTime": (now.replace(second=0)).strftime("%d-%b-%Y %H:%M:%S")},
            "priceInfo": {"lastPrice": round(c, 2), "open": round(o, 2), "close": 0,
                          "previousClose": round(o, 2),
                          "intraDayHighLow": {"min": round(lo, 2), "max": round(h, 2)}},
        }, dumps=json.dumps)
