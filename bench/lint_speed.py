#!/usr/bin/env python3
"""Lint-speed benchmark: lockstep against squawk on the same corpus, in the same run.

Usage:  python3 bench/lint_speed.py [--mb 12] [--runs 3]

Builds lockstep in release mode, generates a corpus of realistic migration files (at
least --mb megabytes, assembled from the repository's own fixtures and example
migrations, with table names varied), then lints it with lockstep and, when installed
(`pip install squawk-cli`), with squawk. Each tool runs --runs times; the best wall time
and the peak resident memory are reported, with throughput in MB/s and the ratios.
Exit codes of the linters are ignored (the corpus is full of findings on purpose).
"""

import argparse
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def statements():
    """Statements from every fixture and example migration (split on ';' at line ends)."""
    out = []
    for p in sorted((ROOT / "tests/fixtures/rules").rglob("*.sql")) + sorted((ROOT / "migrations").glob("*.sql")):
        text = p.read_text(encoding="utf-8", errors="replace")
        for chunk in re.split(r";[ \t]*\n", text):
            chunk = chunk.strip()
            # Keep plain statements; transaction control and function bodies stay out so
            # that files are independent.
            if chunk and "$$" not in chunk and not re.match(r"(?i)^(begin|commit|rollback)\b", chunk):
                out.append(chunk + ";")
    return out


def make_corpus(dest: Path, megabytes: float) -> int:
    rng = random.Random(42)
    pool = statements()
    names = ["orders", "customers", "events", "payments", "invoices", "users", "accounts"]
    total = 0
    i = 0
    while total < megabytes * 1_000_000:
        i += 1
        parts = ["-- generated migration %d" % i, "SET lock_timeout = '2s';"]
        for _ in range(rng.randint(5, 25)):
            s = rng.choice(pool)
            s = re.sub(r"\borders\b", rng.choice(names) + str(rng.randint(1, 50)), s)
            parts.append(s)
        text = "\n\n".join(parts) + "\n"
        (dest / ("V%d__generated.sql" % i)).write_text(text)
        total += len(text.encode())
    return total


def measure(cmd, cwd):
    """Runs cmd; returns (seconds, peak RSS in MB) of that child alone."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    return elapsed, usage.ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=12.0, help="corpus size in megabytes (default 12)")
    ap.add_argument("--runs", type=int, default=3, help="runs per tool; the best time counts (default 3)")
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    lockstep = ROOT / "target/release/lockstep"
    squawk = shutil.which("squawk")

    with tempfile.TemporaryDirectory(prefix="lockstep-bench-") as tmp:
        corpus = Path(tmp) / "migrations"
        corpus.mkdir()
        size = make_corpus(corpus, args.mb)
        mb = size / 1_000_000
        files = len(list(corpus.glob("*.sql")))
        print(f"corpus: {files} files, {mb:.1f} MB, {os.cpu_count()} cores")

        tools = [("lockstep", [str(lockstep), "lint", "--no-config", "migrations"])]
        if squawk:
            version = subprocess.run([squawk, "--version"], capture_output=True, text=True).stdout.strip()
            tools.append((version or "squawk", [squawk, "migrations/*.sql"]))
        else:
            print("squawk not installed (pip install squawk-cli): measuring lockstep alone")

        results = {}
        for name, cmd in tools:
            runs = [measure(cmd, tmp) for _ in range(args.runs)]
            best = min(t for t, _ in runs)
            peak = max(m for _, m in runs)
            results[name] = (best, peak)

        print()
        print(f"{'tool':<16} {'best s':>8} {'MB/s':>8} {'peak MB':>9}")
        for name, (best, peak) in results.items():
            print(f"{name:<16} {best:>8.2f} {mb / best:>8.1f} {peak:>9.1f}")
        if len(results) == 2:
            (_, (lt, lm)), (sname, (st, sm)) = list(results.items())
            print()
            print(f"throughput lockstep / {sname}: {st / lt:.2f}x")
            print(f"peak memory lockstep / {sname}: {lm / sm:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
