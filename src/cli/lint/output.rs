//! `--output [FORMAT=]FILE`: every report of a run, fed from the one lint pass.
//!
//! Each destination (standard output, or a file) has its own reporter. A report file is
//! written to a temporary file in the same directory and renamed over FILE only once the
//! report is complete, so a reader never sees half a report and a failed run leaves the
//! previous one in place. A destination that fails to write is dropped; the others go on.

use std::fs;
use std::io::{self, BufWriter, StdoutLock, Write};
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use tempfile::NamedTempFile;

use super::Format;
use crate::files::{io_message, normalize, FileReport};
use crate::report::{Reporter, Summary};

/// One `--output` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    /// `None`: the `--format` value.
    pub format: Option<Format>,
    /// `-` means standard output.
    pub path: PathBuf,
}

impl OutputSpec {
    fn is_stdout(&self) -> bool {
        self.path.as_os_str() == "-"
    }
}

fn format_names() -> String {
    Format::value_variants()
        .iter()
        .filter_map(|f| f.to_possible_value())
        .map(|v| v.get_name().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses `[FORMAT=]FILE`. A prefix before `=` that is not a format name counts as part of
/// the file name when it looks like a path (holds `/`, `\` or `.`), and is an error otherwise
/// (a mistyped format name would otherwise silently become a file name).
pub fn parse_spec(s: &str) -> Result<OutputSpec, String> {
    let (format, path) = match s.split_once('=') {
        Some((name, rest)) => match Format::from_str(name, false) {
            Ok(f) => (Some(f), rest),
            Err(_) if name.contains(['/', '\\', '.']) => (None, s),
            Err(_) => {
                return Err(format!(
                    "unknown format `{name}` (expected one of: {})",
                    format_names()
                ))
            }
        },
        None => (None, s),
    };
    if path.is_empty() {
        return Err("expected [FORMAT=]FILE, found no file name".into());
    }
    Ok(OutputSpec {
        format,
        path: PathBuf::from(path),
    })
}

enum Out {
    Stdout(BufWriter<StdoutLock<'static>>),
    File {
        path: PathBuf,
        tmp: BufWriter<NamedTempFile>,
    },
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Out::Stdout(w) => w.write(buf),
            Out::File { tmp, .. } => tmp.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Out::Stdout(w) => w.write_all(buf),
            Out::File { tmp, .. } => tmp.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::Stdout(w) => w.flush(),
            Out::File { tmp, .. } => tmp.flush(),
        }
    }
}

struct Sink {
    out: Out,
    reporter: Box<dyn Reporter>,
    error: Option<io::Error>,
}

impl Sink {
    /// Runs `f` unless this sink already failed; remembers the first error.
    fn feed(&mut self, f: impl FnOnce(&mut dyn Reporter, &mut dyn Write) -> io::Result<()>) {
        if self.error.is_none() {
            if let Err(e) = f(self.reporter.as_mut(), &mut self.out) {
                self.error = Some(e);
            }
        }
    }
}

/// A temporary file beside `path` that will replace it: readable like a newly created file
/// (permissions from the umask), or with `path`'s permissions when it exists.
fn create_beside(path: &Path) -> io::Result<NamedTempFile> {
    if path.is_dir() {
        return Err(io::Error::other("is a directory"));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut b = tempfile::Builder::new();
    b.prefix(".lockstep-report-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(fs::Permissions::from_mode(0o666));
    }
    let tmp = b.tempfile_in(dir)?;
    if let Ok(meta) = fs::metadata(path) {
        fs::set_permissions(tmp.path(), meta.permissions())?;
    }
    Ok(tmp)
}

/// Every destination of one run.
pub struct Sinks {
    sinks: Vec<Sink>,
}

/// What went wrong while writing, once everything is finished.
pub struct Finished {
    /// One message per report file that could not be written (each names the file).
    pub file_errors: Vec<String>,
    /// The error writing standard output, if any.
    pub stdout: Option<io::Error>,
}

/// Returned to stop linting once no destination is left to write to.
#[derive(Debug)]
pub struct NothingLeft;

impl Sinks {
    /// Opens every destination. Standard output gets `default` when there is no `--output`,
    /// the format of an `--output` to `-`, `default` when it was given explicitly
    /// (`explicit`) and every `--output` names its own format, else the text report. `make`
    /// builds a reporter for a format; its flag is true for standard output. Errors name the
    /// file.
    pub fn open(
        specs: &[OutputSpec],
        default: Format,
        explicit: bool,
        cwd: &Path,
        make: impl Fn(Format, bool) -> Box<dyn Reporter>,
    ) -> Result<Sinks, String> {
        let stdout_specs: Vec<&OutputSpec> = specs.iter().filter(|s| s.is_stdout()).collect();
        if stdout_specs.len() > 1 {
            return Err("--output: standard output (`-`) given more than once".into());
        }
        let stdout_format = match (specs.is_empty(), stdout_specs.first()) {
            (true, _) => default,
            (false, Some(s)) => s.format.unwrap_or(default),
            (false, None) if explicit && specs.iter().all(|s| s.format.is_some()) => default,
            (false, None) => Format::Text,
        };
        let mut sinks = vec![Sink {
            out: Out::Stdout(BufWriter::new(io::stdout().lock())),
            reporter: make(stdout_format, true),
            error: None,
        }];
        let mut seen: Vec<PathBuf> = Vec::new();
        for spec in specs.iter().filter(|s| !s.is_stdout()) {
            let abs = normalize(&spec.path, cwd);
            if seen.contains(&abs) {
                return Err(format!(
                    "--output: {} is given more than once",
                    spec.path.display()
                ));
            }
            seen.push(abs);
            let tmp = create_beside(&spec.path).map_err(|e| {
                format!(
                    "cannot create the report file {}: {}",
                    spec.path.display(),
                    io_message(&e)
                )
            })?;
            sinks.push(Sink {
                out: Out::File {
                    path: spec.path.clone(),
                    tmp: BufWriter::new(tmp),
                },
                reporter: make(spec.format.unwrap_or(default), false),
                error: None,
            });
        }
        Ok(Sinks { sinks })
    }

    fn any_left(&self) -> Result<(), NothingLeft> {
        if self.sinks.iter().any(|s| s.error.is_none()) {
            Ok(())
        } else {
            Err(NothingLeft)
        }
    }

    /// Whether some report prints the per-statement lock reports.
    pub fn want_locks(&self) -> bool {
        self.sinks.iter().any(|s| s.reporter.wants_locks())
    }

    pub fn begin(&mut self) -> Result<(), NothingLeft> {
        for s in &mut self.sinks {
            s.feed(|rep, out| rep.begin(out));
        }
        self.any_left()
    }

    /// Hands one file's report to every destination still writable.
    pub fn file(&mut self, r: &FileReport) -> Result<(), NothingLeft> {
        for s in &mut self.sinks {
            s.feed(|rep, out| rep.file(out, r));
        }
        self.any_left()
    }

    /// Finishes every report, flushes standard output and moves each complete report file
    /// into place. A report file that failed is not moved (the temporary file is removed).
    pub fn finish(self, summary: &Summary) -> Finished {
        let mut done = Finished {
            file_errors: Vec::new(),
            stdout: None,
        };
        for mut s in self.sinks {
            s.feed(|rep, out| {
                rep.finish(out, summary)?;
                out.flush()
            });
            match s.out {
                Out::Stdout(_) => done.stdout = s.error,
                Out::File { path, tmp } => {
                    let result = match s.error {
                        Some(e) => Err(e),
                        None => tmp
                            .into_inner()
                            .map_err(|e| e.into_error())
                            .and_then(|f| f.persist(&path).map(drop).map_err(|e| e.error)),
                    };
                    if let Err(e) = result {
                        done.file_errors.push(format!(
                            "cannot write the report file {}: {}",
                            path.display(),
                            io_message(&e)
                        ));
                    }
                }
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_a_format_or_just_a_file() {
        assert_eq!(
            parse_spec("gitlab=gl-code-quality-report.json").unwrap(),
            OutputSpec {
                format: Some(Format::Gitlab),
                path: "gl-code-quality-report.json".into()
            }
        );
        assert_eq!(parse_spec("report.sarif").unwrap().format, None);
        assert_eq!(
            parse_spec("out/a=b.json").unwrap().path,
            PathBuf::from("out/a=b.json")
        );
        assert_eq!(parse_spec("junit=-").unwrap().path, PathBuf::from("-"));
        let e = parse_spec("gitlb=x.json").unwrap_err();
        assert!(e.contains("unknown format `gitlb`"), "{e}");
        assert!(e.contains("gitlab"), "{e}");
        assert!(parse_spec("sarif=").is_err());
    }
}
