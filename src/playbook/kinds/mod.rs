//! One module per playbook kind, each implementing [`Kind`]: parsing its TOML table,
//! reading what it needs, the preflight checks and the plan. `partition` is a shadow rebuild
//! (`shadow/`); the others change the table in place, step by step (`steps/`).
//!
//! The one list of kinds ([`kinds!`] below) is the only place a kind is registered: it
//! declares the kind's module and generates the kind's name type ([`KindName`]), the parsed
//! table of any kind ([`Spec`]), the playbook file's shape ([`RawPlaybook`]), and the
//! dispatch from a kind to its module. Adding a kind is a module here with a type
//! implementing [`Kind`] (and, for an in-place kind, `steps::InPlace`), and one line in the
//! list; `test_noop.rs`, a kind that exists only in unit tests, is an example of exactly
//! that.

mod key;
#[cfg(test)]
mod plans_test;

use serde::Deserialize;
use tokio_postgres::Client;

use super::exec::EngineError;
use super::kind::Kind;
use super::plan::AnyPlan;
use super::settings::{Common, Parse, RawBackfill, RawDependents, RawSwap, SpecError};

/// The one list of kinds: `module::Type => Variant(section)`: the kind's module (declared
/// here), its type, its name in [`KindName`] and [`Spec`], and its TOML table.
macro_rules! kinds {
    ($( $(#[$meta:meta])* $module:ident :: $ty:ident => $variant:ident ( $section:ident ) ),* $(,)?) => {
        $($(#[$meta])* pub mod $module;)*

        /// The name of a kind.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum KindName {
            $($(#[$meta])* $variant),*
        }

        impl KindName {
            /// Every kind, in the order of the list.
            #[allow(clippy::vec_init_then_push)] // entries may be cfg'd out
            pub fn all() -> Vec<KindName> {
                let mut all = Vec::new();
                $($(#[$meta])* all.push(KindName::$variant);)*
                all
            }

            /// The `kind = "…"` value.
            pub fn name(self) -> &'static str {
                match self {
                    $($(#[$meta])* KindName::$variant => <$module::$ty as Kind>::NAME),*
                }
            }

            /// The kind's own TOML table.
            pub fn section(self) -> &'static str {
                match self {
                    $($(#[$meta])* KindName::$variant => stringify!($section)),*
                }
            }

            /// Whether `[backfill] workers` applies.
            pub fn workers(self) -> bool {
                match self {
                    $($(#[$meta])* KindName::$variant => <$module::$ty as Kind>::WORKERS),*
                }
            }

            /// Whether `[dependents]` applies.
            pub fn dependents(self) -> bool {
                match self {
                    $($(#[$meta])* KindName::$variant => <$module::$ty as Kind>::DEPENDENTS),*
                }
            }

            /// Whether a run swaps at the end (`[swap] mode` applies).
            pub fn swaps(self) -> bool {
                match self {
                    $($(#[$meta])* KindName::$variant => <$module::$ty as Kind>::SWAPS),*
                }
            }

            /// A plan of this kind, as stored in `lockstep.runs`.
            pub fn load_plan(self, v: serde_json::Value) -> Result<AnyPlan, serde_json::Error> {
                match self {
                    $($(#[$meta])* KindName::$variant => serde_json::from_value::<<$module::$ty as Kind>::Plan>(v).map(Into::into)),*
                }
            }
        }

        /// A playbook's kind with its section, parsed.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Spec {
            $($(#[$meta])* $variant($module::$ty)),*
        }

        impl Spec {
            pub fn name(&self) -> KindName {
                match self {
                    $($(#[$meta])* Spec::$variant(_) => KindName::$variant),*
                }
            }

            /// [`Kind::prepare`] of the kind.
            pub async fn prepare(
                &self,
                pb: &Common,
                client: &Client,
                run_id: &str,
            ) -> Result<(AnyPlan, Vec<String>), EngineError> {
                match self {
                    $($(#[$meta])* Spec::$variant(k) => k.prepare(pb, client, run_id).await.map(|(p, r)| (p.into(), r))),*
                }
            }
        }

        /// The playbook file as written: the common keys and every kind's table.
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct RawPlaybook {
            pub kind: String,
            pub table: String,
            #[serde(default)]
            pub backfill: RawBackfill,
            #[serde(default)]
            pub swap: RawSwap,
            #[serde(default)]
            pub dependents: RawDependents,
            #[serde(default)]
            pub capture: super::settings::RawCapture,
            #[serde(default)]
            pub hooks: super::hooks::RawHooks,
            $($(#[$meta])* pub $section: Option<<$module::$ty as Kind>::Raw>,)*
        }

        impl RawPlaybook {
            /// Which kinds' tables the file has.
            #[allow(clippy::vec_init_then_push)] // entries may be cfg'd out
            pub(crate) fn sections(&self) -> Vec<(KindName, bool)> {
                let mut v = Vec::new();
                $($(#[$meta])* v.push((KindName::$variant, self.$section.is_some()));)*
                v
            }

            /// Parses the table of `kind`.
            pub(crate) fn parse_kind(self, kind: KindName, p: &Parse<'_>) -> Result<Spec, SpecError> {
                match kind {
                    $($(#[$meta])* KindName::$variant => {
                        let raw = p.required(stringify!($section), <$module::$ty as Kind>::NAME, self.$section)?;
                        <$module::$ty as Kind>::parse(raw, p).map(Spec::$variant)
                    }),*
                }
            }
        }
    };
}

kinds! {
    partition::Partition => Partition(partition),
    column_type::ColumnType => ColumnType(column_type),
    rebuild::Rebuild => Rebuild(rebuild),
    not_null::NotNull => NotNull(not_null),
    foreign_key::ForeignKey => ForeignKey(foreign_key),
    check::Check => Check(check),
    unique::Unique => Unique(unique),
    primary_key::PrimaryKey => PrimaryKey(primary_key),
    index::Index => Index(index),
    reindex::Reindex => Reindex(reindex),
    drop_index::DropIndex => DropIndex(drop_index),
    backfill::Backfill => Backfill(update),
    #[cfg(test)]
    test_noop::TestNoop => TestNoop(test_noop),
}

impl KindName {
    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<KindName> {
        KindName::all().into_iter().find(|k| k.name() == s)
    }
}

impl std::fmt::Display for KindName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sections_are_unique() {
        let all = KindName::all();
        let mut names: Vec<&str> = all.iter().map(|k| k.name()).collect();
        let mut sections: Vec<&str> = all.iter().map(|k| k.section()).collect();
        names.sort();
        names.dedup();
        sections.sort();
        sections.dedup();
        assert_eq!(names.len(), all.len());
        assert_eq!(sections.len(), all.len());
        for k in all {
            assert_eq!(KindName::parse(k.name()), Some(k));
        }
        assert_eq!(KindName::parse("upgrade"), None);
    }
}
