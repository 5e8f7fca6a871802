"""Record live streams into the replay layout.

    python -m simulator.record --out recordings/2026-07-01 --symbols BTCUSDT,ETHUSDT --minutes 60

Writes every message of Binance's `!forceOrder@arr` stream, as received, to
`liquidations.jsonl` (one JSON message per line, flushed as it arrives), and when the
time is up (or on Ctrl-C) fetches the 1-minute klines of the recorded window for each
symbol into `klines/SYMBOL.csv` with Binance's header row, starting `--warmup-minutes`
(30) before the recording so a replay has price history before its first liquidation. The result replays with
`python -m simulator --data recordings/2026-07-01`.

Klines come from Binance's USD-M REST (`/fapi/v1/klines`, the same columns as the
replay CSV) or, with `--klines-source bybit`, from Bybit V5 `/v5/market/kline`; Bybit
rows lack the trade count and taker volumes, which are written as 0.
"""

import argparse
import asyncio
import json
import signal
import time
from pathlib import Path

import aiohttp

from .replay import MINUTE_MS

BINANCE_LIQUIDATIONS = "wss://fstream.binance.com/market/ws/!forceOrder@arr"
BINANCE_KLINES = "https://fapi.binance.com/fapi/v1/klines"
BYBIT_KLINES = "https://api.bybit.com/v5/market/kline"
KLINE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)
RECONNECT_DELAY_S = 2.0


async def record_liquidations(url: str, path: Path, stop: asyncio.Event, symbols: set[str] | None) -> int:
    """Append each forceOrder message to `path` until `stop`; reconnect after drops."""
    count = 0
    async with aiohttp.ClientSession() as session:
        with path.open("a") as out:
            while not stop.is_set():
                try:
                    async with session.ws_connect(url, heartbeat=60) as ws:
                        while not stop.is_set():
                            receive = asyncio.ensure_future(ws.receive())
                            waiter = asyncio.ensure_future(stop.wait())
                            done, _ = await asyncio.wait(
                                {receive, waiter}, return_when=asyncio.FIRST_COMPLETED
                            )
                            waiter.cancel()
                            if receive not in done:
                                receive.cancel()
                                break
                            message = receive.result()
                            if message.type != aiohttp.WSMsgType.TEXT:
                                if message.type in (
                                    aiohttp.WSMsgType.CLOSED,
                                    aiohttp.WSMsgType.ERROR,
                                    aiohttp.WSMsgType.CLOSE,
                                ):
                                    break
                                continue
                            event = json.loads(message.data)
                            if "data" in event and "stream" in event:  # combined-stream wrapper
                                event = event["data"]
                            if event.get("e") != "forceOrder":
                                continue
                            if symbols and event["o"]["s"] not in symbols:
                                continue
                            out.write(json.dumps(event, separators=(",", ":")) + "\n")
                            out.flush()
                            count += 1
                except aiohttp.ClientError:
                    pass
                if not stop.is_set():
                    await asyncio.sleep(RECONNECT_DELAY_S)
    return count


async def fetch_klines(source: str, url: str, symbol: str, start_ms: int, end_ms: int) -> list[str]:
    """CSV lines (Binance columns) for the 1-minute klines from start_ms to end_ms, inclusive."""
    lines = []
    async with aiohttp.ClientSession() as session:
        cursor = start_ms
        while cursor <= end_ms:
            if source == "binance":
                query = {
                    "symbol": symbol,
                    "interval": "1m",
                    "startTime": cursor,
                    "endTime": end_ms,
                    "limit": 1000,
                }
                async with session.get(url, params=query) as response:
                    response.raise_for_status()
                    rows = await response.json()
                batch = [",".join(str(value) for value in row) for row in rows]
            else:
                query = {
                    "category": "linear",
                    "symbol": symbol,
                    "interval": "1",
                    "start": cursor,
                    "end": end_ms,
                    "limit": 1000,
                }
                async with session.get(url, params=query) as response:
                    response.raise_for_status()
                    answer = await response.json()
                if answer.get("retCode") != 0:
                    raise RuntimeError(f"kline request for {symbol} failed: {answer.get('retMsg')}")
                rows = sorted(answer["result"]["list"], key=lambda row: int(row[0]))
                batch = [
                    f"{row[0]},{row[1]},{row[2]},{row[3]},{row[4]},{row[5]},{int(row[0]) + MINUTE_MS - 1},"
                    f"{row[6]},0,0,0,0"
                    for row in rows
                ]
            if not rows:
                break
            lines.extend(batch)
            cursor = int(str(batch[-1]).split(",")[0]) + MINUTE_MS
    return lines


async def record(
    out: Path,
    symbols: list[str],
    minutes: float,
    liquidations_url: str,
    klines_source: str,
    klines_url: str,
    only_symbols: bool = False,
    stop: asyncio.Event | None = None,
    warmup_minutes: int = 30,
) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    (out / "klines").mkdir(exist_ok=True)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    started = int(time.time() * 1000)
    if minutes:
        loop.call_later(minutes * 60, stop.set)
    count = await record_liquidations(
        liquidations_url, out / "liquidations.jsonl", stop, set(symbols) if only_symbols else None
    )
    ended = int(time.time() * 1000)
    # Klines from before the first liquidation give a replay its price history (VWAP warm-up).
    first_minute = started - started % MINUTE_MS - warmup_minutes * MINUTE_MS
    last_minute = ended - ended % MINUTE_MS
    written = {}
    for symbol in symbols:
        lines = await fetch_klines(klines_source, klines_url, symbol, first_minute, last_minute)
        (out / "klines" / f"{symbol}.csv").write_text("\n".join([KLINE_HEADER, *lines]) + "\n")
        written[symbol] = len(lines)
    return {"liquidations": count, "klines": written}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simulator.record", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory to write the replay layout into")
    parser.add_argument("--symbols", required=True, help="comma-separated symbols to fetch klines for")
    parser.add_argument("--minutes", type=float, default=60.0, help="how long to record (0 = until Ctrl-C)")
    parser.add_argument("--only-symbols", action="store_true", help="keep liquidations of --symbols only")
    parser.add_argument(
        "--warmup-minutes",
        type=int,
        default=30,
        help="klines to fetch from before the recording started (default 30)",
    )
    parser.add_argument("--liquidations-url", default=BINANCE_LIQUIDATIONS)
    parser.add_argument("--klines-source", choices=("binance", "bybit"), default="binance")
    parser.add_argument(
        "--klines-url", default=None, help="kline REST URL (default: the source's public one)"
    )
    args = parser.parse_args(argv)
    symbols = [symbol.strip().upper() for symbol in args.symbols.split(",") if symbol.strip()]
    klines_url = args.klines_url or (BINANCE_KLINES if args.klines_source == "binance" else BYBIT_KLINES)
    summary = asyncio.run(
        record(
            Path(args.out),
            symbols,
            args.minutes,
            args.liquidations_url,
            args.klines_source,
            klines_url,
            args.only_symbols,
            warmup_minutes=args.warmup_minutes,
        )
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
