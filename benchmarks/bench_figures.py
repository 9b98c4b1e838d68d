"""Figure build times at 1x / 4x / 16x rows: timeline (gaps, delays, hits), heatmap, hit counts, contact graph.

    .venv/bin/python benchmarks/bench_figures.py            # 5,000 messages at 1x (about 900 gaps)
    .venv/bin/python benchmarks/bench_figures.py --base 2000 --repeat 1

The rows grow with the days (1x = ``--base`` messages over 30 days, 4x over 120 days, ...), so gaps and
reply delays grow with them, as in a longer grant. For each scale it measures (best of ``--repeat``):

* ``timeline``: :func:`investigator.widgets.figures.timeline_figure` with the gaps (analysis.silences,
  ``--gap`` minutes), the reply delays of three agents (analysis.first_replies) and the hits of one
  common word highlighted — the figure alone, gaps and delays computed beforehand;
* ``timeline_widget``: the same figure put into a plotly ``FigureWidget`` (what the panel shows);
* ``timeline_update``: a second keyword's hits applied to that FigureWidget in place (batch_update);
* ``heatmap``, ``hit_counts`` (by sender), ``contacts``: the other figure builders.

Prints a table of seconds and the ratio to 1x (linear: 4 and 16), then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _jsonline import add_json_flag, json_stdout  # noqa: E402

from investigator import analysis as A  # noqa: E402
from investigator.demo.samples import generate_messages  # noqa: E402
from investigator.widgets import figures as F  # noqa: E402
from investigator.widgets._live import LiveFigure  # noqa: E402

TZ = "Asia/Shanghai"
AGENTS = ["zhangwei", "lina", "wangjing"]
SCALES = (1, 4, 16)
HIT_WORD, OTHER_WORD = "谢谢", "东门"  # common words of the generator's texts: hundreds of hits at 1x


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(scale: int, base: int, gap: timedelta, repeat: int) -> dict[str, float | int]:
    msgs = generate_messages(base * scale, start=date(2026, 1, 1), days=30 * scale, tz=TZ)
    gaps = A.silences(msgs.with_columns(pl.lit("all").alias("__all")), gap, by="__all", tz=TZ)
    delays = A.first_replies(msgs, agents=AGENTS, tz=TZ).filter(pl.col("reply_id").is_not_null())
    hits = A.search(msgs, HIT_WORD, tz=TZ)
    other = A.search(msgs, OTHER_WORD, tz=TZ)
    ids = hits["message_id"].to_list()

    def timeline(highlight: list[str]) -> object:
        return F.timeline_figure(msgs, None, tz=TZ, gaps=gaps, delays=delays, highlight=highlight, lang="en")

    row: dict[str, float | int] = {"scale": scale, "messages": msgs.height, "gaps": gaps.height,
                                   "delays": delays.height, "hits": hits.height}
    row["timeline"] = best(lambda: timeline(ids), repeat)
    row["timeline_widget"] = best(lambda: LiveFigure().show(timeline(ids)), repeat)
    live = LiveFigure()
    live.show(timeline(ids))
    flip = [other["message_id"].to_list(), ids]

    def update() -> None:
        flip.reverse()
        live.show(timeline(flip[0]))

    row["timeline_update"] = best(update, repeat)
    assert live.builds == 1, "the update rebuilt the widget"
    row["heatmap"] = best(lambda: F.activity_heatmap_figure(msgs, tz=TZ, lang="en"), repeat)
    row["hit_counts"] = best(lambda: F.hit_counts_figure(hits, by="sender", tz=TZ, lang="en"), repeat)
    row["contacts"] = best(lambda: F.contact_graph_figure(msgs, lang="en"), repeat)
    return row


FIGURES = ("timeline", "timeline_widget", "timeline_update", "heatmap", "hit_counts", "contacts")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=int, default=5000, help="messages at 1x (default 5000)")
    parser.add_argument("--gap", type=float, default=10, help="gap threshold in minutes (default 10)")
    parser.add_argument("--repeat", type=int, default=3)
    add_json_flag(parser)
    args = parser.parse_args()
    out = json_stdout(args)
    measure(1, 500, timedelta(minutes=args.gap), 1)  # warm-up: plotly's validators, anywidget's JavaScript
    rows = [measure(s, args.base, timedelta(minutes=args.gap), args.repeat) for s in SCALES]
    print(f"figures: python {platform.python_version()}, polars {pl.__version__}, {platform.machine()}, "
          f"best of {args.repeat}")
    print(f"{'scale':>5} {'messages':>9} {'gaps':>6} {'delays':>6} {'hits':>5}  "
          + " ".join(f"{name:>16}" for name in FIGURES))
    first = rows[0]
    for row in rows:
        cells = " ".join(f"{row[n]:>8.3f}s {row[n] / first[n]:>5.1f}x" for n in FIGURES)
        print(f"{row['scale']:>4}x {row['messages']:>9,} {row['gaps']:>6,} {row['delays']:>6,} {row['hits']:>5,}  "
              + cells)
    print(json.dumps({"benchmark": "figures", "base": args.base, "gap_minutes": args.gap, "repeat": args.repeat,
                      "rows": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]}), file=out)


if __name__ == "__main__":
    main()
