//! Which files to lint (migration order, excludes), reading them safely, and linting them in
//! parallel with results in a deterministic order.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::framework::{self, DirCache, DirFacts, Direction, Framework, Section, TxMode};
use crate::lint::catalog::Catalog;
use crate::lint::undo::{Created, UpIndex};
use crate::lint::{check, prepare, Diagnostic, LintOptions, Prepared, StatementLocks, TxNote};
use crate::sql::placeholders;

/// One input to lint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    File { path: PathBuf, display: String },
    Stdin { display: String, text: Vec<u8> },
}

impl Input {
    pub fn display(&self) -> &str {
        match self {
            Input::File { display, .. } | Input::Stdin { display, .. } => display,
        }
    }
}

/// A problem with a path or file that is not a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    /// True when the file could not be linted at all (counts as an I/O error, exit 2).
    pub fatal: bool,
    pub message: String,
}

/// Everything known about one linted file.
#[derive(Debug, Clone)]
pub struct FileReport {
    pub path: String,
    pub source: String,
    pub statements: usize,
    pub diagnostics: Vec<Diagnostic>,
    /// Findings accepted by a baseline: not reported, but kept so that the fingerprints of
    /// the others stay what they were (see [`crate::report::fingerprint`]).
    pub baselined: Vec<Diagnostic>,
    /// Lock prediction per statement.
    pub locks: Vec<StatementLocks>,
    pub problem: Option<FileProblem>,
    /// The migration framework the file was read as.
    pub framework: Framework,
    /// How the framework runs each part of the file.
    pub sections: Vec<SectionInfo>,
}

/// One part of a file as its migration tool runs it, and whether it was linted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionInfo {
    pub direction: Direction,
    /// First and last line (1-based).
    pub line: usize,
    pub end_line: usize,
    /// The tool runs the section inside one transaction.
    pub transaction: bool,
    /// Why (empty when no framework decided it).
    pub reason: String,
    /// False when down sections are skipped (`lint_down = false`).
    pub linted: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("{path}: {message}")]
    Path { path: String, message: String },
    #[error("invalid exclude glob `{glob}`: {message}")]
    Glob { glob: String, message: String },
}

/// Compares strings the way people number migrations: digit runs by value.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let la = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let lb = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (&a[..la], &b[..lb]);
                let ta = trim_zeros(na);
                let tb = trim_zeros(nb);
                let ord = ta
                    .len()
                    .cmp(&tb.len())
                    .then_with(|| ta.cmp(tb))
                    .then(la.cmp(&lb));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[la..];
                b = &b[lb..];
            }
            (Some(x), Some(y)) => {
                let ord = x
                    .to_ascii_lowercase()
                    .cmp(&y.to_ascii_lowercase())
                    .then(x.cmp(y));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let z = d.iter().take_while(|&&c| c == b'0').count();
    &d[z.min(d.len().saturating_sub(1))..]
}

/// Builds the exclude matcher; globs are matched against paths relative to `root`.
pub fn exclude_set(globs: &[String]) -> Result<GlobSet, DiscoverError> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        let glob = Glob::new(g).map_err(|e| DiscoverError::Glob {
            glob: g.clone(),
            message: e.to_string(),
        })?;
        b.add(glob);
        // `dir/` or `dir` also excludes everything below it.
        if !g.ends_with("**") {
            let below = format!("{}/**", g.trim_end_matches('/'));
            if let Ok(glob) = Glob::new(&below) {
                b.add(glob);
            }
        }
    }
    b.build().map_err(|e| DiscoverError::Glob {
        glob: globs.join(", "),
        message: e.to_string(),
    })
}

/// Makes `path` absolute (against `cwd`) and removes `.` and `..` components lexically.
pub fn normalize(path: &Path, cwd: &Path) -> PathBuf {
    use std::path::Component;
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn is_excluded(path: &Path, root: &Path, cwd: &Path, excludes: &GlobSet) -> bool {
    if excludes.is_empty() {
        return false;
    }
    let abs = normalize(path, cwd);
    let root = normalize(root, cwd);
    match abs.strip_prefix(&root) {
        Ok(rel) => excludes.is_match(rel),
        Err(_) => excludes.is_match(&abs) || excludes.is_match(path),
    }
}

/// Expands `paths` into files in migration order ([`crate::order`]; `framework` is the one
/// set by the user, `None` to recognize it per file). Directories yield every `*.sql` below
/// them (hidden directories skipped; excludes applied); named files are always included.
/// Problems with individual paths are returned alongside the files found.
pub fn discover(
    paths: &[PathBuf],
    root: &Path,
    cwd: &Path,
    excludes: &GlobSet,
    framework: Option<Framework>,
) -> (Vec<Input>, Vec<DiscoverError>) {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        let display = p.display().to_string();
        match std::fs::metadata(p) {
            Err(e) => errors.push(DiscoverError::Path {
                path: display,
                message: io_message(&e),
            }),
            Ok(m) if m.is_dir() => {
                let mut found = Vec::new();
                walk(p, &mut found, &mut errors);
                found.retain(|f| !is_excluded(f, root, cwd, excludes));
                crate::order::sort(&mut found, framework);
                inputs.extend(found.into_iter().map(|path| Input::File {
                    display: path.display().to_string(),
                    path,
                }));
            }
            Ok(_) => inputs.push(Input::File {
                path: p.clone(),
                display,
            }),
        }
    }
    (inputs, errors)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<DiscoverError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(DiscoverError::Path {
                path: dir.display().to_string(),
                message: io_message(&e),
            });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            if !name.starts_with('.') {
                walk(&path, out, errors);
            }
        } else if name.to_ascii_lowercase().ends_with(".sql") && (ft.is_file() || path.is_file()) {
            out.push(path);
        }
    }
}

/// Replaces `path`'s contents without ever leaving it half-written: the new text goes to a
/// temporary file beside it (with the original's permissions), which is then renamed over it.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions())?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A short, lowercase description of an I/O error.
pub fn io_message(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => "no such file or directory".into(),
        PermissionDenied => "permission denied".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_lowercase(),
                None => s.to_lowercase(),
            }
        }
    }
}

/// Decodes file bytes: binary files are refused, invalid UTF-8 is replaced with a warning.
pub fn decode(bytes: Vec<u8>) -> (Option<String>, Option<FileProblem>) {
    if let Some(pos) = memchr::memchr(0, &bytes[..bytes.len().min(8192)]) {
        return (
            None,
            Some(FileProblem {
                fatal: true,
                message: format!("binary file (NUL byte at offset {pos}), not linted"),
            }),
        );
    }
    match String::from_utf8(bytes) {
        Ok(s) => (Some(s), None),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let line = text[..at.min(text.len())].matches('\n').count() + 1;
            (
                Some(text),
                Some(FileProblem {
                    fatal: false,
                    message: format!(
                        "not valid UTF-8 (first bad byte at line {line}); invalid bytes were replaced before linting"
                    ),
                }),
            )
        }
    }
}

/// A file read and parsed, waiting for the ordered check.
/// One section of a file as its migration tool runs it, parsed when it is linted.
pub struct Unit {
    pub section: Section,
    /// The text the section is linted as, when it differs from the file's: the other
    /// sections blanked out and placeholders made parseable, offsets unchanged.
    pub text: Option<String>,
    /// The parsed statements; `None` for down sections when `lint_down` is off.
    pub prepared: Option<Prepared>,
}

/// Detects the file's framework (unless `opts` fixes it) and splits it into the sections
/// its tool runs, parsing each that is linted.
pub fn plan_units(
    path: &Path,
    source: &str,
    dir: DirFacts,
    opts: &LintOptions,
) -> (Framework, Vec<Unit>) {
    let fw = opts
        .framework
        .unwrap_or_else(|| framework::detect(Some(path), source, dir));
    let plan = framework::plan(fw, Some(path), source, dir);
    let whole = plan.is_whole_file(source.len());
    let neutral = placeholders::neutralize(source);
    let units = plan
        .sections
        .into_iter()
        .map(|section| {
            let linted = opts.lint_down || section.direction == Direction::Up;
            let text = match (&neutral, whole) {
                (None, true) => None,
                (Some(n), true) => Some(n.clone()),
                (n, false) => Some(framework::section_text(
                    n.as_deref().unwrap_or(source),
                    &section,
                )),
            };
            let prepared = linted.then(|| prepare(text.as_deref().unwrap_or(source)));
            Unit {
                section,
                text,
                prepared,
            }
        })
        .collect();
    (fw, units)
}

struct Loaded {
    path: String,
    source: String,
    problem: Option<FileProblem>,
    framework: Framework,
    units: Vec<Unit>,
}

/// Human-readable size: `16 MiB`, `1.5 KiB`, `300 bytes` (powers of 1024, named so).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    let v = format!("{v:.1}");
    format!("{} {}", v.strip_suffix(".0").unwrap_or(&v), UNITS[unit])
}

/// What kind of file `ft` is, for messages about files that are not regular.
fn file_kind(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a named pipe (FIFO)"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// Looks at a file before it is read: a regular file of at most `limit` bytes, else the
/// reason it is refused (`done` says what is not done to it: `linted`, `traced`).
pub fn check_file(path: &Path, limit: u64, done: &str) -> Result<(), String> {
    check_metadata(&std::fs::metadata(path), limit, done)
}

/// [`check_file`] on the file's metadata, looked up already.
fn check_metadata(
    meta: &std::io::Result<std::fs::Metadata>,
    limit: u64,
    done: &str,
) -> Result<(), String> {
    let meta = meta
        .as_ref()
        .map_err(|e| format!("cannot read: {}", io_message(e)))?;
    if !meta.is_file() {
        return Err(format!(
            "{}, not a regular file; not {done}",
            file_kind(meta.file_type())
        ));
    }
    if meta.len() > limit {
        return Err(too_big(meta.len(), limit, done));
    }
    Ok(())
}

fn too_big(size: u64, limit: u64, done: &str) -> String {
    format!(
        "{}, over the {} limit; not {done} (raise it with --max-file-size or `max_file_size` in lockstep.toml)",
        format_size(size),
        format_size(limit)
    )
}

/// Reads a file to lint: only regular files (a FIFO or a device is refused before it is
/// opened, so it can neither block nor stream without end), and at most `limit` bytes
/// (a larger file is refused with its size). The message is lowercase, for
/// `FileProblem`.
pub fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    read_file_for(path, limit, "linted")
}

/// [`read_file`] for another command: `done` says what is not done to a refused file
/// (`traced`).
pub fn read_file_for(path: &Path, limit: u64, done: &str) -> Result<Vec<u8>, String> {
    read_looked_up(path, &std::fs::metadata(path), limit, done)
}

/// [`read_file_for`] with the file's metadata looked up already.
fn read_looked_up(
    path: &Path,
    meta: &std::io::Result<std::fs::Metadata>,
    limit: u64,
    done: &str,
) -> Result<Vec<u8>, String> {
    use std::io::Read;
    check_metadata(meta, limit, done)?;
    let refuse = |ft| format!("{}, not a regular file; not {done}", file_kind(ft));
    let too_big = |size: u64| too_big(size, limit, done);
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {}", io_message(&e)))?;
    // The file may have been replaced between the two looks.
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read: {}", io_message(&e)))?;
    if !meta.is_file() {
        return Err(refuse(meta.file_type()));
    }
    let mut bytes = Vec::with_capacity(meta.len().min(limit) as usize);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {}", io_message(&e)))?;
    if bytes.len() as u64 > limit {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// An input to load, with its directory's facts and (a file's) metadata.
type Item<'a> = (
    &'a Input,
    DirFacts,
    Option<std::io::Result<std::fs::Metadata>>,
);

fn load((input, dir, meta): &Item, opts: &LintOptions) -> Loaded {
    let bytes = match (input, meta) {
        (Input::File { path, .. }, Some(meta)) => {
            read_looked_up(path, meta, opts.max_file_size, "linted")
        }
        (Input::File { path, .. }, None) => read_file(path, opts.max_file_size),
        (Input::Stdin { text, .. }, _) => Ok(text.clone()),
    };
    let display = input.display().to_string();
    let (text, problem) = match bytes {
        Ok(b) => decode(b),
        Err(message) => (
            None,
            Some(FileProblem {
                fatal: true,
                message,
            }),
        ),
    };
    let Some(source) = text else {
        return Loaded {
            path: display,
            source: String::new(),
            problem,
            framework: Framework::Plain,
            units: Vec::new(),
        };
    };
    let path = match input {
        Input::File { path, .. } => path.as_path(),
        Input::Stdin { display, .. } => Path::new(display),
    };
    let (fw, units) = plan_units(path, &source, *dir, opts);
    Loaded {
        path: display,
        source,
        problem,
        framework: fw,
        units,
    }
}

fn line_of(src: &str, offset: usize) -> usize {
    1 + src.as_bytes()[..offset.min(src.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// Whether the tool runs `prepared` in one transaction, and why.
pub fn transaction_of(
    section: &Section,
    prepared: Option<&Prepared>,
    opts: &LintOptions,
) -> (bool, String) {
    let facts = prepared.map(|p| p.facts());
    match section.tx {
        TxMode::Default => (opts.assume_in_transaction, String::new()),
        TxMode::Wrapped => (true, section.reason.clone()),
        TxMode::None => (false, section.reason.clone()),
        TxMode::Implicit => {
            let explicit = facts.is_some_and(|f| f.has_begin());
            let several = facts.is_some_and(|f| f.count() > 1);
            (several && !explicit, section.reason.clone())
        }
        TxMode::FlywayAuto => match facts.and_then(|f| f.non_transactional()) {
            Some(what) => (
                false,
                format!("Flyway runs a script holding `{what}` without a transaction"),
            ),
            None => (true, section.reason.clone()),
        },
    }
}

/// Checks one loaded file section by section: up sections continue the schema replay,
/// down sections are linted against a copy of it, knowing what their up part created (the
/// up section before them in the file, or the migration's up file, via `ups`).
fn check_loaded(
    l: Loaded,
    opts: &LintOptions,
    mut catalog: Catalog,
    ups: &mut UpIndex,
) -> (FileReport, Catalog) {
    let migration = framework::migration_key(Path::new(&l.path), l.framework);
    let mut up_file = migration.as_ref().and_then(|m| ups.take(m));
    let mut up_here: Option<Created> = None;
    let mut created_here = Created::default();
    let mut report = FileReport {
        path: l.path,
        source: String::new(),
        statements: 0,
        diagnostics: Vec::new(),
        baselined: Vec::new(),
        locks: Vec::new(),
        problem: l.problem,
        framework: l.framework,
        sections: Vec::with_capacity(l.units.len()),
    };
    let several = l.units.len() > 1;
    for u in l.units {
        let (transaction, reason) = transaction_of(&u.section, u.prepared.as_ref(), opts);
        let first = u.section.keep.first().map_or(0, |r| r.start);
        let last = u.section.keep.last().map_or(0, |r| r.end.saturating_sub(1));
        report.sections.push(SectionInfo {
            direction: u.section.direction,
            line: line_of(&l.source, first),
            end_line: line_of(&l.source, last.max(first)),
            transaction,
            reason: reason.clone(),
            linted: u.prepared.is_some(),
        });
        let Some(prepared) = u.prepared else { continue };
        let mut o = opts.clone();
        o.assume_in_transaction = transaction;
        if u.section.direction == Direction::Up {
            // Only a down part (later in this file, or the migration's down file) asks.
            if several || migration.is_some() {
                let created = prepared.facts().created().clone();
                created_here.merge(created.clone());
                up_here = Some(created);
            }
        } else {
            let mut up = up_here.clone().unwrap_or_default();
            up.merge(up_file.take().unwrap_or_default());
            o.up_created = Some(up);
        }
        if u.section.tx != TxMode::Default {
            o.tx_note = Some(TxNote {
                reason,
                hint: l.framework.no_transaction_hint(),
                alone: l.framework.alone_reason(u.section.tx),
            });
        }
        let src = u.text.as_deref().unwrap_or(&l.source);
        // A down section sees the schema so far and leaves it as it was.
        let down = (u.section.direction != Direction::Up).then(|| catalog.savepoint());
        let (result, next) = check(src, prepared, &o, catalog);
        catalog = next;
        if let Some(sp) = down {
            catalog.rollback_to(sp);
        }
        report.statements += result.statements;
        report.locks.extend(result.locks);
        let direction = u.section.direction;
        report.diagnostics.extend(
            result
                .diagnostics
                .into_iter()
                .filter(|d| {
                    // A directive line shows up in every section; an unused-ignore note
                    // belongs to the section that holds the directive.
                    !several
                        || d.rule != crate::lint::rules::unused_ignore::RULE.name
                        || u.section.keep.iter().any(|r| r.contains(&d.span.start))
                })
                .map(|mut d| {
                    if direction != Direction::Up {
                        d.message = format!("{} ({} section)", d.message, direction.as_str());
                    }
                    d
                }),
        );
    }
    if several {
        report
            .diagnostics
            .sort_by_key(|d| (d.span.start, d.span.end));
        report.locks.sort_by_key(|s| s.start);
    }
    if let Some(m) = migration {
        ups.record(m, created_here);
    }
    report.source = l.source;
    (report, catalog)
}

/// The number of cores to use (looked up once: it reads the cgroup files).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Below this many bytes a window of files is read and parsed on the calling thread:
/// starting threads would cost more than it saves.
const PARALLEL_BYTES: u64 = 256 * 1024;

/// Maps `f` over `items` on all cores (the calling thread is one of them); results come
/// back in input order.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = cores().min(items.len());
    if workers <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut mine = Vec::new();
        loop {
            let i = next.fetch_add(1, AtomicOrdering::Relaxed);
            let Some(item) = items.get(i) else { break };
            mine.push((i, f(item)));
        }
        mine
    };
    let parts: Vec<Vec<(usize, R)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..workers).map(|_| s.spawn(work)).collect();
        let mut parts = vec![work()];
        parts.extend(
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
        );
        parts
    });
    let mut all: Vec<(usize, R)> = parts.into_iter().flatten().collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

/// Lints every input: reading and parsing run on all cores, then the rules run in input
/// (migration) order so each file sees the schema replayed from the files before it.
/// Collects every report; for large runs prefer [`lint_each`], which holds one window.
pub fn lint_all(inputs: &[Input], opts: &LintOptions) -> Vec<FileReport> {
    let mut reports = Vec::with_capacity(inputs.len());
    let done: Result<(), std::convert::Infallible> = lint_each(inputs, opts, |r| {
        reports.push(r);
        Ok(())
    });
    match done {
        Ok(()) => reports,
        Err(never) => match never {},
    }
}

/// Lints every input like [`lint_all`], handing each file's report to `on_file` as soon as
/// it is checked, in input order. Only one window of files (8 per core) is held in memory
/// at a time, and one file when the window is small enough to be read on one thread, so
/// reports can be written out while later files are still being read. The
/// first error from `on_file` stops the run and is returned.
pub fn lint_each<E>(
    inputs: &[Input],
    opts: &LintOptions,
    mut on_file: impl FnMut(FileReport) -> Result<(), E>,
) -> Result<(), E> {
    let window = 8 * cores();
    let mut catalog = Catalog::default();
    let mut ups = UpIndex::default();
    let mut dirs = DirCache::default();
    for chunk in inputs.chunks(window) {
        // Each file's metadata is looked up once: for the window's size here, and to refuse
        // what is not a regular file or too large before it is opened.
        let items: Vec<Item> = chunk
            .iter()
            .map(|i| match i {
                Input::File { path, .. } => (i, dirs.get(path), Some(std::fs::metadata(path))),
                Input::Stdin { .. } => (i, DirFacts::default(), None),
            })
            .collect();
        let bytes: u64 = items
            .iter()
            .map(|(i, _, meta)| match (i, meta) {
                (Input::File { .. }, Some(Ok(m))) => m.len(),
                (Input::Stdin { text, .. }, _) => text.len() as u64,
                _ => 0,
            })
            .sum();
        if bytes < PARALLEL_BYTES {
            // On one thread: each file is read, parsed and checked before the next is read,
            // so only one file's statements are held at a time.
            for item in &items {
                let (report, next) = check_loaded(load(item, opts), opts, catalog, &mut ups);
                catalog = next;
                on_file(report)?;
            }
            continue;
        }
        for l in parallel_map(&items, |item| load(item, opts)) {
            let (report, next) = check_loaded(l, opts, catalog, &mut ups);
            catalog = next;
            on_file(report)?;
        }
    }
    Ok(())
}

/// Lints `text` as the file at `path` would be linted (its framework and directory facts as
/// for a file on disk), on its own, without the schema of other files: for checking what a
/// rewrite of the file would do.
pub fn lint_text(path: &Path, text: &str, opts: &LintOptions) -> FileReport {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let (framework, units) = plan_units(path, text, DirFacts::of(dir), opts);
    let loaded = Loaded {
        path: path.display().to_string(),
        source: text.to_string(),
        problem: None,
        framework,
        units,
    };
    check_loaded(loaded, opts, Catalog::default(), &mut UpIndex::default()).0
}
