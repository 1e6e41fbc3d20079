//! Migration order: the order in which each migration tool applies the files of a
//! directory, so that schema replay sees them in the order the database will.
//!
//! | framework | order |
//! |---|---|
//! | diesel | by the folder's version: its name up to the first `_`, dashes removed, compared as text (`2017-09-23-182408_x` is version `20170923182408`); `up.sql` before `down.sql` |
//! | Prisma | by folder name, compared as text (`20230518191501_init` before `20250625_pivot`) |
//! | golang-migrate, goose, sqlx, dbmate (`<number>_<name>[.up\|.down].sql`) | by the leading number, compared as a number; a version's up file before its down file |
//! | Flyway | versioned scripts by version (`1.2_3` is `1.2.3`, compared part by part as numbers; `1.0` is `1`), each undo script after its version, then repeatable scripts by description |
//! | anything else | natural sort of the path (`V2__` before `V10__`, `0002_` before `0010_`) |
//!
//! The framework is recognized from the file name (see [`crate::framework`]); files of one
//! migration set (the folders of diesel and Prisma, the directory of the others) are
//! ordered among themselves, and sets are placed by the natural order of their directory.

use std::path::{Path, PathBuf};

use crate::files::natural_cmp;
use crate::framework::{self, Direction, Framework};

/// A number written in decimal, compared by value however long it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Number {
    /// Digits without leading zeros, by length first.
    len: usize,
    digits: String,
}

impl Number {
    fn parse(s: &str) -> Option<Number> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits = s.trim_start_matches('0').to_string();
        Some(Number {
            len: digits.len(),
            digits,
        })
    }
}

/// Where a file goes within its migration set. Variants of different kinds (mixed
/// frameworks in one directory) are ordered by kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Diesel {
        version: String,
        folder: String,
        /// `up.sql` 0, `down.sql` 1.
        file: u8,
    },
    Prisma {
        folder: String,
    },
    Flyway {
        repeatable: bool,
        /// Numeric parts, trailing zero parts dropped; empty for repeatables.
        version: Vec<Number>,
        undo: bool,
        /// The description: repeatables run in its order.
        description: String,
    },
    Version {
        version: Number,
        down: bool,
    },
    /// Natural order of the path (the set is the file itself).
    Natural,
}

fn name_of(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

fn parent(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// diesel's version of a migration folder: the name up to the first `_`, without dashes.
fn diesel_version(folder: &str) -> String {
    folder.split('_').next().unwrap_or("").replace('-', "")
}

fn flyway_key(name: &str) -> Option<Key> {
    let direction = framework::flyway_kind(name)?;
    let stem = name.strip_suffix(".sql")?;
    let (head, description) = stem.split_once("__")?;
    if head == "R" {
        return Some(Key::Flyway {
            repeatable: true,
            version: Vec::new(),
            undo: false,
            description: description.to_string(),
        });
    }
    let mut version: Vec<Number> = head[1..]
        .split(['.', '_'])
        .map(|p| {
            Number::parse(p).unwrap_or(Number {
                len: 0,
                digits: String::new(),
            })
        })
        .collect();
    while version.last().is_some_and(|n| n.len == 0) {
        version.pop();
    }
    Some(Key::Flyway {
        repeatable: false,
        version,
        undo: direction == Direction::Down,
        description: description.to_string(),
    })
}

/// The migration set a file belongs to and its key within it.
fn placement(path: &Path, forced: Option<Framework>) -> (PathBuf, Key) {
    let natural = || (path.to_path_buf(), Key::Natural);
    let name = name_of(path);
    let folder = || path.parent().map(name_of).unwrap_or("").to_string();
    let set_of_folders = || path.parent().map(parent).unwrap_or_default();
    let wants = |f: Framework| forced.is_none_or(|x| x == f);
    if forced == Some(Framework::Plain) {
        return natural();
    }
    if (name == "up.sql" || name == "down.sql") && wants(Framework::Diesel) {
        let folder = folder();
        return (
            set_of_folders(),
            Key::Diesel {
                version: diesel_version(&folder),
                folder,
                file: u8::from(name == "down.sql"),
            },
        );
    }
    if name == "migration.sql" && wants(Framework::Prisma) {
        return (set_of_folders(), Key::Prisma { folder: folder() });
    }
    if let Some(key) = flyway_key(name).filter(|_| wants(Framework::Flyway)) {
        return (parent(path), key);
    }
    let numbered = matches!(
        forced,
        None | Some(
            Framework::GolangMigrate | Framework::Goose | Framework::Sqlx | Framework::Dbmate
        )
    );
    if let (Some(direction), true) = (framework::numbered(name), numbered) {
        let digits = name.split('_').next().unwrap_or("");
        if let Some(version) = Number::parse(digits) {
            return (
                parent(path),
                Key::Version {
                    version,
                    down: direction == Some(Direction::Down),
                },
            );
        }
    }
    natural()
}

/// Sorts the files found below one directory into migration order. `forced` is the
/// framework set with `--framework` / `framework =` (`None`: recognized per file; `none`:
/// the natural order of the paths).
pub fn sort(files: &mut [PathBuf], forced: Option<Framework>) {
    let mut keyed: Vec<(PathBuf, Key, String, PathBuf)> = files
        .iter()
        .map(|f| {
            let (set, key) = placement(f, forced);
            (set, key, f.to_string_lossy().into_owned(), f.clone())
        })
        .collect();
    keyed.sort_by(|a, b| {
        natural_cmp(&a.0.to_string_lossy(), &b.0.to_string_lossy())
            .then_with(|| a.1.cmp(&b.1))
            .then_with(|| natural_cmp(&a.2, &b.2))
    });
    for (slot, (_, _, _, f)) in files.iter_mut().zip(keyed) {
        *slot = f;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(names: &[&str], forced: Option<Framework>) -> Vec<String> {
        let mut files: Vec<PathBuf> = names.iter().map(PathBuf::from).collect();
        sort(&mut files, forced);
        files
            .iter()
            .map(|f| f.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn diesel_orders_by_version_without_dashes() {
        // The natural sort put every dashed folder first.
        let got = sorted(
            &[
                "m/2017-09-23-182408_move_tokens/up.sql",
                "m/20170804200817_add_badges/down.sql",
                "m/20170804200817_add_badges/up.sql",
                "m/2017-09-23-182408_move_tokens/down.sql",
                "m/00000000000000_diesel_initial_setup/up.sql",
                "m/2017-08-31-230457_invitations/up.sql",
            ],
            None,
        );
        assert_eq!(
            got,
            [
                "m/00000000000000_diesel_initial_setup/up.sql",
                "m/20170804200817_add_badges/up.sql",
                "m/20170804200817_add_badges/down.sql",
                "m/2017-08-31-230457_invitations/up.sql",
                "m/2017-09-23-182408_move_tokens/up.sql",
                "m/2017-09-23-182408_move_tokens/down.sql",
            ]
        );
    }

    #[test]
    fn prisma_orders_by_folder_name() {
        // The natural sort compared 20250625 with 20230518191501 as numbers.
        let got = sorted(
            &[
                "p/migrations/20250625_add_pivot_table_charttype/migration.sql",
                "p/migrations/20230518191501_init/migration.sql",
                "p/migrations/20240101000000_more/migration.sql",
            ],
            None,
        );
        assert_eq!(
            got,
            [
                "p/migrations/20230518191501_init/migration.sql",
                "p/migrations/20240101000000_more/migration.sql",
                "p/migrations/20250625_add_pivot_table_charttype/migration.sql",
            ]
        );
    }

    #[test]
    fn numbered_files_order_by_parsed_version_up_before_down() {
        let got = sorted(
            &[
                "g/20250625_pivot.up.sql",
                "g/2_b.down.sql",
                "g/2_b.up.sql",
                "g/10_c.up.sql",
                "g/0001_a.up.sql",
                "g/20230518191501_init.up.sql",
            ],
            None,
        );
        assert_eq!(
            got,
            [
                "g/0001_a.up.sql",
                "g/2_b.up.sql",
                "g/2_b.down.sql",
                "g/10_c.up.sql",
                "g/20250625_pivot.up.sql",
                "g/20230518191501_init.up.sql",
            ]
        );
        // goose names its files the same way, without .up/.down.
        let got = sorted(&["k/00010_c.sql", "k/00002_b.sql", "k/1_a.sql"], None);
        assert_eq!(got, ["k/1_a.sql", "k/00002_b.sql", "k/00010_c.sql"]);
    }

    #[test]
    fn flyway_orders_by_version_then_repeatables() {
        let got = sorted(
            &[
                "f/R__views.sql",
                "f/V1.1__b.sql",
                "f/U1__a.sql",
                "f/V1__a.sql",
                "f/V1_10__d.sql",
                "f/V1.9__c.sql",
                "f/R__a_functions.sql",
                "f/V2.0__e.sql",
            ],
            None,
        );
        assert_eq!(
            got,
            [
                "f/V1__a.sql",
                "f/U1__a.sql",
                "f/V1.1__b.sql",
                "f/V1.9__c.sql",
                "f/V1_10__d.sql",
                "f/V2.0__e.sql",
                "f/R__a_functions.sql",
                "f/R__views.sql",
            ]
        );
    }

    #[test]
    fn plain_directories_keep_the_natural_order() {
        let names = ["d/V10__x.sql", "d/V2__x.sql", "d/a/up.sql", "d/2_b.up.sql"];
        let got = sorted(&names, Some(Framework::Plain));
        assert_eq!(
            got,
            ["d/2_b.up.sql", "d/a/up.sql", "d/V2__x.sql", "d/V10__x.sql"]
        );
        let got = sorted(&["x/b.sql", "x/a10.sql", "x/a9.sql"], None);
        assert_eq!(got, ["x/a9.sql", "x/a10.sql", "x/b.sql"]);
    }

    #[test]
    fn sets_are_placed_by_their_directory() {
        let got = sorted(
            &[
                "r/schema/z.sql",
                "r/migrations/2_b/up.sql",
                "r/migrations/1_a/up.sql",
                "r/a.sql",
            ],
            None,
        );
        assert_eq!(
            got,
            [
                "r/a.sql",
                "r/migrations/1_a/up.sql",
                "r/migrations/2_b/up.sql",
                "r/schema/z.sql",
            ]
        );
    }
}
