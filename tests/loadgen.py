"""A callback load generator, run as its own process: POSTs unique ids at a fixed rate.

    python tests/loadgen.py URL --rate 1000 --count 3000 --out accepted.json

Each body is ``{"id": N}``, sent at ``start + N / rate``. The ids the server answered 202 are
written to ``--out`` as JSON (with a count of every status and of connection errors), so a
test can check that every accepted callback was delivered exactly once. It prints ``started``
when the first 202 arrives. Connection errors are expected while the server is down; each
worker then reconnects. aiohttp, not httpx: on this 2-core machine httpx's pool peaks near
300 requests/s where aiohttp offers 2,500.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import time
from pathlib import Path

import aiohttp


async def main(
    url: str,
    rate: float,
    count: int,
    concurrency: int,
    until_file: str | None = None,
    after: float = 1.5,
) -> dict[str, object]:
    accepted: list[int] = []
    statuses: dict[str, int] = {}
    ids = itertools.count()
    start = time.monotonic()
    last_send = start
    announced = False
    stop_at: float | None = None  # with --until-file: `after` seconds once the file exists
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            nonlocal announced, last_send, stop_at
            while (n := next(ids)) < count:
                delay = start + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                now = time.monotonic()
                if until_file is not None:
                    # one stat per request is cheap next to the request itself
                    if stop_at is None and os.path.exists(until_file):  # noqa: ASYNC240
                        stop_at = now + after
                    if stop_at is not None and now > stop_at:
                        return
                last_send = max(last_send, now)
                try:
                    async with session.post(url, json={"id": n}) as response:
                        await response.read()
                        status = str(response.status)
                except (aiohttp.ClientError, TimeoutError, OSError):
                    status = "error"
                statuses[status] = statuses.get(status, 0) + 1
                if status == "202":
                    accepted.append(n)
                    if not announced:
                        announced = True
                        print("started", flush=True)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    # Offered = how fast requests went out, not how fast answers came back.
    elapsed = max(last_send - start, 1e-9)
    sent = sum(statuses.values())
    return {"accepted": accepted, "statuses": statuses, "offered_per_second": sent / elapsed}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--out", required=True)
    parser.add_argument("--until-file", help="stop --after seconds once this file exists")
    parser.add_argument("--after", type=float, default=1.5)
    args = parser.parse_args()
    report = asyncio.run(
        main(args.url, args.rate, args.count, args.concurrency, args.until_file, args.after)
    )
    Path(args.out).write_text(json.dumps(report))
    sys.exit(0)
