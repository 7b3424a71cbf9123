#!/usr/bin/env python3
"""Replays a scripted dashboard session of 50 interactions against a running
`funnelpulse serve` and prints per-interaction latency percentiles.

    funnelpulse serve --lake lake &          # embedded, or with --scheduler df://…
    python3 bench/serve.py [--url http://127.0.0.1:8080]

Each interaction is what one user action loads: a page, or a page and the
chart data its script fetches (one HTTP request after the other, as a browser
on one connection would). Standard library only.
"""

import argparse
import datetime
import json
import statistics
import time
import urllib.error
import urllib.parse
import urllib.request


def get(base, path):
    with urllib.request.urlopen(base + path, timeout=120) as response:
        return response.read()


def q(**pairs):
    items = []
    for key, value in pairs.items():
        for v in value if isinstance(value, list) else [value]:
            items.append((key, v))
    return urllib.parse.urlencode(items)


def script(base):
    """The 50 interactions: lists of requests, built from the lake's own values."""
    overview = json.loads(get(base, "/api/overview"))
    last = datetime.date.fromisoformat(overview["range"]["to"])
    day = lambda n: str(last - datetime.timedelta(days=n))
    funnel = json.loads(get(base, "/api/funnel?" + q(**{"from": day(13), "to": day(0)})))
    brands = [g["key"] for g in funnel["top_brands"]][:5] or []
    categories = [g["key"] for g in funnel["top_categories"] if g["key"]][:2]
    anomalies = json.loads(get(base, "/api/anomalies?" + q(**{"from": day(13), "to": day(0)})))["v2"][:5]

    def page_and_series(page, series):
        return [page, "/api/series?" + series]

    steps = []
    for i in range(5):
        span = [1, 7, 14][i % 3]
        r = {"from": day(span - 1 + i), "to": day(i)}
        grain = "hour" if i % 2 else "day"
        steps.append(page_and_series("/?" + q(grain=grain, **r), q(grain=grain, **r)))
        steps.append(["/funnel?" + q(**r)])
        if brands:
            b = brands[i % len(brands)]
            steps.append(["/funnel?" + q(brand=b, **r)])
            steps.append(["/api/series?" + q(grain="hour", brand=b, **r)])  # click a brand
            steps.append(["/funnel?" + q(brand=brands[:3], band="10-30", **r)])
        if categories:
            steps.append(["/funnel?" + q(category=categories[i % len(categories)], **r)])
        steps.append(["/anomalies?" + q(**r)])
        if anomalies:
            a = anomalies[i % len(anomalies)]
            d = datetime.date.fromisoformat(a["window_start"][:10])
            around = {"from": str(d - datetime.timedelta(days=1)), "to": str(d + datetime.timedelta(days=1))}
            steps.append(["/api/series?" + q(grain="hour", brand=a["brand"], **around)])  # click an anomaly
        steps.append(["/stream"])
        steps.append(["/quality"])
    while len(steps) < 50:
        steps.append(steps[len(steps) % 10])
    return steps[:50]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    args = parser.parse_args()
    base = args.url.rstrip("/")
    steps = script(base)
    get(base, "/quality")  # the data-quality figures are computed once per table version: warm them
    timings = []
    for requests in steps:
        start = time.perf_counter()
        for path in requests:
            get(base, path)
        timings.append(1000 * (time.perf_counter() - start))
    timings.sort()
    p95 = timings[int(round(0.95 * len(timings))) - 1]
    print(f"{len(timings)} interactions ({sum(len(s) for s in steps)} requests) against {base}")
    print(f"p50 {statistics.median(timings):.0f} ms   p95 {p95:.0f} ms   max {timings[-1]:.0f} ms")


if __name__ == "__main__":
    main()
