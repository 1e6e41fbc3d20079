#!/usr/bin/env python3
"""Lint-speed benchmark: lockstep against squawk on real migration histories, in the same run.

Usage:  python3 bench/lint_speed.py [--corpus ../shared/corpus] [--runs 5] [--sets ...]

Needs the corpus of real histories (see ../shared/corpus/README.md: SOURCES.tsv lists each
project's files) and Python 3.9+. It builds lockstep in release mode, installs squawk-cli
from PyPI into a virtual environment under target/bench/ (once), and lints the same file
list with both tools:

  whole       the whole corpus in one invocation
  migrations  the application migration histories only, in one invocation
  projects    each SOURCES.tsv row (a project's migrations, extension scripts or test suite)
              in its own invocation
  hostile     lockstep alone on generated hostile inputs (a 100 MB file, a 10 MB INSERT,
              a 10 MB one-line SELECT, a megabyte of `;`, /dev/zero, a FIFO): time, peak
              memory and how each run ended (not part of the default sets)

Both tools get the same files as arguments (files that are not valid UTF-8 are left out:
squawk stops at the first one). Runs alternate (lockstep, squawk, lockstep, ...) so that a
change in the machine's speed affects both; each figure is the median of --runs runs
(more for an input of a few milliseconds: up to 41, about 0.4 s of CPU per tool).
CPU is user + system time of the process; peak memory is its maximum resident set. The
throughput ratio is squawk's CPU time over lockstep's on the same input; the memory ratio
is lockstep's peak over squawk's. Linearity compares lockstep's CPU time per MB on the whole
corpus in one invocation with the same on the projects run one at a time.
Exit codes of the linters are ignored (the corpus is full of findings).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MB = 1_000_000
LAUNCHER = None


def natural_key(path):
    """Migration order: digit runs compare by value (as lockstep sorts a directory)."""
    return [(0, int(t), t) if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", path)]


def load_sets(corpus: Path):
    """Reads SOURCES.tsv: one (name, kind, files) per row, with files that are valid UTF-8."""
    sources = corpus / "SOURCES.tsv"
    if not sources.is_file():
        sys.exit(f"{sources} not found: the benchmark needs the corpus of real histories (--corpus)")
    rows = []
    skipped = []
    for line in sources.read_text().splitlines():
        if not line.strip():
            continue
        repo, kind, pattern = line.split("\t")[:3]
        base = corpus / repo.replace("/", "__")
        rx = re.compile(pattern)
        files = []
        for p in base.rglob("*"):
            rel = p.relative_to(base).as_posix()
            if not p.is_file() or not rx.search(rel):
                continue
            try:
                p.read_bytes().decode("utf-8")
            except UnicodeDecodeError:
                skipped.append(str(p))
                continue
            files.append(str(p))
        files.sort(key=natural_key)
        rows.append((repo, kind, files))
    return rows, skipped


def size_of(files):
    return sum(os.path.getsize(f) for f in files)


def launcher() -> Path:
    """Builds bench/peak_rss.rs: measuring from Python would count Python's own memory."""
    src = ROOT / "bench" / "peak_rss.rs"
    exe = ROOT / "target" / "bench" / "peak_rss"
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        exe.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["rustc", "-O", "--edition", "2021", str(src), "-o", str(exe)], check=True)
    return exe


def measure(cmd, cwd):
    """Runs cmd once; returns (cpu seconds, wall seconds, peak RSS in MiB) of that command."""
    out = subprocess.run([str(LAUNCHER)] + cmd, cwd=cwd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    fields = out.stderr.split()
    if out.returncode != 0 or len(fields) != 3:
        sys.exit(f"cannot measure {cmd[0]}: {out.stderr.strip()}")
    cpu, wall, kib = fields
    return float(cpu), float(wall), int(kib) / 1024.0


# Inputs that take a few milliseconds get more runs, up to MAX_RUNS, so that each tool gets
# about MIN_CPU seconds of CPU in all: a single run of 5 ms moves by a tenth with the
# machine's noise, the median of 40 does not.
MIN_CPU = 0.4
MAX_RUNS = 41


def compare(tools, files, runs, cwd):
    """Alternating runs of each tool on files; the median of each figure per tool."""
    samples = {name: [] for name, _ in tools}
    done = 0
    while done < runs:
        for name, argv in tools:
            samples[name].append(measure(argv + files, cwd))
        done += 1
        if done == 1:
            fastest = min(s[0][0] for s in samples.values())
            wanted = int(MIN_CPU / max(fastest, 1e-3)) | 1
            runs = max(runs, min(wanted, MAX_RUNS))
    return {name: tuple(statistics.median(s[i] for s in runs_) for i in range(3))
            for name, runs_ in samples.items()}


def hostile_inputs(dir: Path):
    """Generated inputs that must end quickly with findings or a clear message."""
    migration = ("CREATE TABLE orders (id bigint PRIMARY KEY, total numeric);\n"
                 "CREATE INDEX orders_total_idx ON orders (total);\n"
                 "ALTER TABLE orders ADD COLUMN note text;\n"
                 "INSERT INTO orders (id, total) VALUES (1, 2.5), (2, 3.5);\n"
                 "SELECT * FROM orders WHERE id = 42;\n"
                 "DROP TABLE orders;\n")

    def repeated(path, size):
        chunk = migration * 1000
        with open(path, "w") as f:
            for _ in range(size // len(chunk) + 1):
                f.write(chunk)
        return path

    files = [("100 MB of repeated statements", repeated(dir / "big100.sql", 100 * MB)),
             ("10 MB of repeated statements", repeated(dir / "big10.sql", 10 * MB))]
    rows = ",\n".join(f"({i}, 'customer {i:07d}', 'a note about order {i}')" for i in range(250_000))
    insert = dir / "insert.sql"
    insert.write_text(f"INSERT INTO orders (id, customer, note) VALUES\n{rows};\n")
    files.append((f"{insert.stat().st_size / MB:.0f} MB INSERT ... VALUES, 250k rows", insert))
    select = dir / "select.sql"
    select.write_text("SELECT " + "1," * (5 * MB - 4) + "1;\n")
    files.append(("10 MB single-line SELECT 1,1,...", select))
    semis = dir / "semicolons.sql"
    semis.write_text(";" * MB)
    files.append(("1 MB of ';' on one line", semis))
    files.append(("/dev/zero", Path("/dev/zero")))
    fifo = dir / "fifo.sql"
    os.mkfifo(fifo)
    files.append(("a FIFO nobody writes to", fifo))
    return files


def run_hostile(lockstep: Path):
    print("| hostile input | CPU s | wall s | peak MiB | exit | outcome |")
    print("|---|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory(prefix="lockstep-hostile-") as tmp:
        for name, path in hostile_inputs(Path(tmp)):
            cmd = [str(lockstep), "lint", "--no-config", str(path)]
            cpu, wall, peak = measure(cmd, tmp)
            out = subprocess.run(cmd, cwd=tmp, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                 errors="replace")
            lines = [l for l in out.stdout.splitlines() if l.startswith(("error:", "checked"))]
            outcome = "; ".join(l.replace(tmp + "/", "")[:120] for l in lines[:2])
            print(f"| {name} | {cpu:.2f} | {wall:.2f} | {peak:.0f} | {out.returncode} | {outcome} |",
                  flush=True)


def squawk_binary(version: str) -> Path:
    venv = ROOT / "target" / "bench" / f"squawk-{version}"
    exe = venv / "bin" / "squawk"
    if not exe.exists():
        print(f"installing squawk-cli {version} into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", f"squawk-cli=={version}"],
                       check=True)
    return exe


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus",
                    help="the corpus of real histories (default ../shared/corpus)")
    ap.add_argument("--runs", type=int, default=5, help="runs per tool and input; medians count (default 5)")
    ap.add_argument("--sets", default="whole,migrations,projects",
                    help="which inputs: any of whole, migrations, projects, hostile "
                         "(default: whole,migrations,projects)")
    ap.add_argument("--squawk-version", default="2.70.0", help="squawk-cli version from PyPI (default 2.70.0)")
    ap.add_argument("--lockstep", type=Path, help="lockstep binary to measure (default: build target/release)")
    args = ap.parse_args()
    sets = set(args.sets.split(","))

    if args.lockstep:
        lockstep = args.lockstep.resolve()
    else:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
        lockstep = ROOT / "target" / "release" / "lockstep"
    global LAUNCHER
    LAUNCHER = launcher()
    if "hostile" in sets:
        run_hostile(lockstep)
        sets.discard("hostile")
        if not sets:
            return
        print()
    corpus = args.corpus.resolve()
    rows, skipped = load_sets(corpus)
    squawk = squawk_binary(args.squawk_version)
    version = subprocess.run([str(squawk), "--version"], capture_output=True, text=True).stdout.strip()
    tools = [("lockstep", [str(lockstep), "lint", "--no-config"]), ("squawk", [str(squawk)])]

    inputs = []
    if "whole" in sets:
        inputs.append(("whole corpus, one invocation", [f for _, _, fs in rows for f in fs]))
    if "migrations" in sets:
        inputs.append(("application migrations, one invocation",
                       [f for _, kind, fs in rows if kind.startswith("migrations") for f in fs]))
    if "projects" in sets:
        for repo, kind, fs in rows:
            inputs.append((f"{repo} ({kind.split(' (')[0]})", fs))

    print(f"lockstep {lockstep}; {version}; {os.cpu_count()} cores; median of {args.runs} alternating runs (up to {MAX_RUNS} for short inputs)")
    if skipped:
        print(f"left out (not valid UTF-8): {', '.join(os.path.relpath(s, corpus) for s in skipped)}")
    print()
    print("| input | files | MB | CPU s lockstep / squawk | throughput | wall s lockstep / squawk "
          "| MB/s (CPU) lockstep / squawk | peak MiB lockstep / squawk | memory |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    per_project = []
    with tempfile.TemporaryDirectory(prefix="lockstep-bench-") as cwd:
        for name, files in inputs:
            if not files:
                continue
            mb = size_of(files) / MB
            r = compare(tools, files, args.runs, cwd)
            (lc, lw, lm), (sc, sw, sm) = r["lockstep"], r["squawk"]
            if name.endswith(")"):
                per_project.append((name, mb, lc))
            print(f"| {name} | {len(files)} | {mb:.2f} | {lc:.2f} / {sc:.2f} | **{sc / max(lc, 1e-3):.2f}×** "
                  f"| {lw:.2f} / {sw:.2f} | {mb / max(lc, 1e-3):.1f} / {mb / max(sc, 1e-3):.1f} "
                  f"| {lm:.1f} / {sm:.1f} | {lm / sm:.2f}× |", flush=True)
            if name.startswith("whole"):
                whole = (mb, lc)
    if per_project and "whole" in sets:
        total_mb = sum(mb for _, mb, _ in per_project)
        total_cpu = sum(c for _, _, c in per_project)
        print()
        print(f"lockstep CPU per MB: whole corpus in one invocation {whole[1] / whole[0]:.3f} s/MB, "
              f"projects one at a time {total_cpu / total_mb:.3f} s/MB "
              f"(sum {total_cpu:.2f} s over {total_mb:.2f} MB): "
              f"linearity {whole[1] / whole[0] / (total_cpu / total_mb):.2f}×")


if __name__ == "__main__":
    sys.exit(main())
