#!/usr/bin/python3
"""Writes the benchmark page: docs/bench/README.md and a plot per family.

Usage: bench/report.py RUN OUTDIR

RUN is a saved run of `make bench` (bench/report.sh writes one): lines in
Go's benchmark format,

    BenchmarkChanPingPong/load=busy/weft-threads   163023   1618.0 ns/op

with value-unit pairs after the first figure (B/gen, CPUs, ...; a row
whose first figure is not ns/op, such as B/conn, is compared by that
figure), "# skip" lines
for peers that could not run, and header lines "# key: value" (date,
machine, load) that the page repeats.

A row's name is Benchmark<Family>/<case>/<impl>: the last part is who ran
it (weft, weft-threads, go, pthread, ...), the parts between are the case
(threads=2, load=busy, ...; none for most). Every row is shown as its
time over that of the weft row it is measured against (reference()):
below 1, faster than weft; above 1, slower.
Needs matplotlib (Debian's python3-matplotlib; make bench-peers).
"""

import os
import re
import sys
from collections import OrderedDict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROW = re.compile(r"^(Benchmark[^/\s]+)/(\S+)\s+(\d+)\s+([0-9.]+) (\S+)(.*)$")
HEADER = re.compile(r"^# (date|machine|cpus|kernel|load before|load after|"
                    r"ended|commit): (.*)$")
SKIP = re.compile(r"^# skip (.*)$")


def parse(path):
    """Returns (header dict, families: name -> cases: case -> rows, skips)."""
    header, families, skips = {}, OrderedDict(), []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            m = HEADER.match(line)
            if m:
                header[m.group(1)] = m.group(2)
                continue
            m = SKIP.match(line)
            if m:
                skips.append(m.group(1))
                continue
            m = ROW.match(line)
            if not m:
                continue
            family, rest, n, value, unit, extra = m.groups()
            parts = rest.split("/")
            impl, case = parts[-1], "/".join(parts[:-1])
            cases = families.setdefault(family, OrderedDict())
            cases.setdefault(case, []).append({
                "impl": impl,
                "n": int(n),
                "value": float(value),  # the first figure: ns/op, B/conn, ...
                "unit": unit,
                "extra": " ".join(extra.split()),
            })
    return header, families, skips


KINDS = ("threads", "procs", "tasks")


def reference(rows, row):
    """The weft row that row is measured against: itself for a weft row;
    for a peer, the case's weft row of the same kind (threads, procs,
    tasks; pthread counts as threads, asyncio and gevent as tasks) when the case has several, else its
    first weft row; else the case's first row (a case without weft, such
    as a serial baseline)."""
    if row["impl"].startswith("weft"):
        return row
    wefts = [r for r in rows if r["impl"].startswith("weft")]
    name = row["impl"]
    for word, kind in (("pthread", "threads"), ("asyncio", "tasks"),
                       ("gevent", "tasks")):
        name = name.replace(word, kind)
    for kind in KINDS:
        if kind in name.split("-") or name.startswith(kind):
            for r in wefts:
                if r["impl"].split("-")[1:2] == [kind]:
                    return r
    return wefts[0] if wefts else rows[0]


def human(row):
    """The row's first figure, short: 1.62 µs, 514 B/conn."""
    if row["unit"] != "ns/op":
        return "%.4g %s" % (row["value"], row["unit"])
    ns = row["value"]
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return "%.3g %s" % (ns / scale, unit)
    return "%.3g ns" % ns


def rows_unit(cases):
    """The unit of a family's first figures (ns/op for most)."""
    for rows in cases.values():
        return rows[0]["unit"]
    return "ns/op"


def plot(family, cases, path):
    """A horizontal bar per row, grouped by case: its figure over its
    reference's, on a log scale, each bar labelled with its figure."""
    labels, ratios, colours = [], [], []
    for case, rows in cases.items():
        for row in rows:
            name = (case + "/" if case else "") + row["impl"]
            labels.append(name)
            ratios.append(row["value"] / reference(rows, row)["value"])
            colours.append("#1f77b4" if row["impl"].startswith("weft")
                           else "#bbbbbb")
    height = 0.45 + 0.32 * len(labels)
    fig, ax = plt.subplots(figsize=(8, max(height, 1.6)))
    y = list(range(len(labels)))[::-1]
    ax.barh(y, ratios, color=colours)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    unit = rows_unit(cases)
    if unit == "ns/op":
        ax.set_xlabel("time per op over weft's (log scale; < 1: faster "
                      "than weft)")
    else:
        ax.set_xlabel("%s over weft's (log scale; < 1: less than weft)" % unit)
    ax.set_title(family, fontsize=10)
    rows = [row for case_rows in cases.values() for row in case_rows]
    for yi, ratio, row in zip(y, ratios, rows):
        ax.text(ratio, yi, "  %s (%.2f×)" % (human(row), ratio),
                va="center", fontsize=7)
    lo, hi = min(ratios), max(ratios)
    ax.set_xlim(min(lo, 1.0) / 2.5, max(hi, 1.0) * 12)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def page(header, families, skips, outdir):
    out = []
    out.append("# weft's benchmarks, as plots\n")
    out.append("Written by `make bench-report` from the saved run "
               "[`run.txt`](run.txt); `make bench-report SAVED=docs/bench/run.txt` "
               "writes this page again from it without running anything.\n")
    out.append("| | |\n|---|---|")
    for key in ("date", "commit", "machine", "cpus", "kernel", "load before",
                "load after", "ended"):
        if key in header:
            out.append("| %s | %s |" % (key, header[key]))
    out.append("")
    out.append(
        "Each plot shows one benchmark family. A bar is one row of the run: "
        "a peer's time per operation (or its first figure, such as the "
        "bytes per idle connection of BenchmarkHTTPIdle) over that of the "
        "weft row of the same "
        "case and kind (threads against weft's threads, processes against "
        "its processes, tasks, goroutines and greenlets against its tasks; "
        "the table names it), so that weft's own bars are 1 and a peer's "
        "bar below 1 is faster than weft, above 1 slower; on a log scale, "
        "labelled with the row's own time. A case without a weft row is "
        "measured against its first row. weft's rows are blue, the peers' "
        "grey. The "
        "machine is shared and noisy: a figure is the median of five "
        "rounds of one run, and the rows of a case ran in alternating "
        "rounds, so that a noisy moment hurt them alike. The issues and "
        "`docs/` quote three runs where a target depends on it.\n")
    out.append("Families: " + ", ".join(
        "[%s](#%s)" % (f[len("Benchmark"):], f.lower()) for f in families) +
        "\n")
    for family, cases in families.items():
        png = family[len("Benchmark"):] + ".png"
        plot(family, cases, os.path.join(outdir, png))
        out.append("## %s\n" % family)
        out.append("![%s](%s)\n" % (family, png))
        out.append("| case | impl | %s | over | against | other |" %
                   rows_unit(cases))
        out.append("|---|---|---:|---:|---|---|")
        for case, rows in cases.items():
            for row in rows:
                ref = reference(rows, row)
                out.append("| %s | %s | %.1f | %.2f× | %s | %s |" % (
                    case or "–", row["impl"], row["value"],
                    row["value"] / ref["value"],
                    "itself" if ref is row else ref["impl"],
                    row["extra"] or ""))
        out.append("")
    if skips:
        out.append("## Skipped in this run\n")
        for skip in skips:
            out.append("- %s" % skip)
        out.append("")
    with open(os.path.join(outdir, "README.md"), "w") as f:
        f.write("\n".join(out))


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: bench/report.py RUN OUTDIR")
    header, families, skips = parse(sys.argv[1])
    if not families:
        sys.exit("bench/report.py: no benchmark lines in " + sys.argv[1])
    os.makedirs(sys.argv[2], exist_ok=True)
    for name in os.listdir(sys.argv[2]):  # plots of families now gone
        if name.endswith(".png"):
            os.remove(os.path.join(sys.argv[2], name))
    page(header, families, skips, sys.argv[2])


if __name__ == "__main__":
    main()
