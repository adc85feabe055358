#!/usr/bin/env python3
"""Write the generated tables of RELIABILITY.md from the campaigns' logs.

    reliability.py faults LOG.jsonl RELIABILITY.md   # rows of crates/cli/tests/{faults,security}.rs
    reliability.py fuzz LOG.jsonl RELIABILITY.md     # rows `make fuzz` wrote

Each table sits between `<!-- NAME:begin -->` and `<!-- NAME:end -->` and is replaced
whole, with the date and machine it was measured on; the rest of the file is left as is.
"""

import datetime
import json
import os
import platform
import sys


def machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{platform.node() or 'this machine'}: {os.cpu_count()} cores{', ' + model if model else ''}"


def faults_table(rows: list) -> str:
    out = [
        "| campaign | fault | cases | handled cleanly | what was checked | notes |",
        "|---|---|---:|---:|---|---|",
    ]
    total = clean = 0
    for r in rows:
        total += r["cases"]
        clean += r["clean"]
        notes = "; ".join(r.get("notes", []))
        if r.get("failures"):
            notes = (notes + "; " if notes else "") + "FAILED: " + " / ".join(
                f.replace("\n", " ")[:200] for f in r["failures"]
            )
        out.append(
            f"| {r['campaign']} | {r['class']} | {r['cases']} | {r['clean']} | {r['checked']} | {notes} |"
        )
    out.append(f"| **all** | | **{total}** | **{clean}** | | |")
    return "\n".join(out)


# What each fuzz target of fuzz/ parses.
PARSES = {
    "pipeline": "pipeline files: TOML, profiles, `${…}` expansion, matrices, the graph",
    "lockfile": "lockfiles",
    "sources": "source manifests (`manifests/*.toml`)",
    "checkpoint": "`torch.save` checkpoints: ZIP and legacy formats, the pickle, storages, tensor views",
    "sql": "`ventral sql` statements: the read-only filter, planning and the optimiser (our aggregate push-down), not execution",
    "cifar": "CIFAR-100 binary records",
    "coco": "COCO instances JSON against an image folder",
    "stimulus_set": "BrainIO StimulusSet CSV + ZIP (names, paths, images)",
    "zarr_assembly": "assembly stores: Zarr v3 metadata, chunk grid, shard indexes, coordinate tables",
    "netcdf": "BrainIO netCDF-4/HDF5 DataAssemblies: attributes, dimensions, coordinates (our handling of what libhdf5 returns, in-process; in ventral the `ventral-netcdf` worker contains a crash of libhdf5)",
}


def fuzz_table(rows: list) -> str:
    out = [
        "| target | what it parses | seconds | executions | result |",
        "|---|---|---:|---:|---|",
    ]
    for r in rows:
        out.append(
            f"| `{r['target']}` | {PARSES.get(r['target'], '')} | {r['seconds']} | {r['executions']:,} | {r['result']} |"
        )
    return "\n".join(out)


def main() -> int:
    if len(sys.argv) != 4 or sys.argv[1] not in ("faults", "fuzz"):
        print(__doc__, file=sys.stderr)
        return 2
    name, log, doc = sys.argv[1:]
    with open(log) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if not rows:
        print(f"reliability.py: {log} holds no rows; {doc} left as it is", file=sys.stderr)
        return 1
    if name == "faults":
        modes = {r.get("mode") for r in rows}
        if modes != {"full"}:
            print(f"reliability.py: {log} is not a full campaign ({modes}); {doc} left as it is", file=sys.stderr)
            return 1
        # The security campaign logs beside the fault campaign; its rows get a table of
        # their own.
        parts = {
            "faults": [r for r in rows if r["campaign"] != "security"],
            "security": [r for r in rows if r["campaign"] == "security"],
        }
        # A table whose campaign did not run (`cargo test --test security` alone) is kept.
        tables = {k: faults_table(v) for k, v in parts.items() if v}
        how = "`make faults`"
    else:
        tables = {"fuzz": fuzz_table(rows)}
        how = "`make fuzz`"
    stamp = f"Measured by {how} on {datetime.date.today().isoformat()} ({machine()})."
    with open(doc) as f:
        text = f.read()
    for block, table in tables.items():
        begin, end = f"<!-- {block}:begin -->", f"<!-- {block}:end -->"
        if begin not in text or end not in text:
            print(f"reliability.py: {doc} lacks {begin} … {end}", file=sys.stderr)
            return 1
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{begin}\n{stamp}\n\n{table}\n{end}{tail}"
    with open(doc + ".tmp", "w") as f:
        f.write(text)
    os.replace(doc + ".tmp", doc)
    print(f"{doc}: the {', '.join(tables)} table(s) rewritten ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
