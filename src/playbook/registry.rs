//! The one list of playbook kinds ([`kinds!`] below), the only place a kind is registered.
//! The list generates the kind's name type ([`KindName`]), the parsed section of any kind
//! ([`Spec`]), the playbook file's shape ([`RawPlaybook`]), and the dispatch from a kind to
//! its module.
//!
//! Adding a kind: a module under `kinds/` with a type implementing [`Kind`] (and, for an
//! in-place kind, `steps::InPlace`), and one line in the list. `kinds/test_noop.rs`, a kind
//! that exists only in unit tests, is an example of exactly that.

use serde::Deserialize;
use tokio_postgres::Client;

use super::exec::EngineError;
use super::kind::Kind;
use super::kinds;
use super::plan::AnyPlan;
use super::settings::{Common, Parse, RawBackfill, RawDependents, RawSwap, SpecError};

/// The one list of kinds: `Variant(type) => section`, where `section` is the kind's TOML
/// table.
macro_rules! kinds {
    ($( $(#[$meta:meta])* $variant:ident ( $ty:ty ) => $section:ident ),* $(,)?) => {
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
                    $($(#[$meta])* KindName::$variant => <$ty as Kind>::NAME),*
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
                    $($(#[$meta])* KindName::$variant => <$ty as Kind>::WORKERS),*
                }
            }

            /// Whether `[dependents]` applies.
            pub fn dependents(self) -> bool {
                match self {
                    $($(#[$meta])* KindName::$variant => <$ty as Kind>::DEPENDENTS),*
                }
            }

            /// A plan of this kind, as stored in `lockstep.runs`.
            pub fn load_plan(self, v: serde_json::Value) -> Result<AnyPlan, serde_json::Error> {
                match self {
                    $($(#[$meta])* KindName::$variant => serde_json::from_value::<<$ty as Kind>::Plan>(v).map(Into::into)),*
                }
            }
        }

        /// A playbook's kind with its section, parsed.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Spec {
            $($(#[$meta])* $variant($ty)),*
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
            $($(#[$meta])* pub $section: Option<<$ty as Kind>::Raw>,)*
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
                        let raw = p.required(stringify!($section), <$ty as Kind>::NAME, self.$section)?;
                        <$ty as Kind>::parse(raw, p).map(Spec::$variant)
                    }),*
                }
            }
        }
    };
}

kinds! {
    Partition(kinds::partition::Partition) => partition,
    ColumnType(kinds::column_type::ColumnType) => column_type,
    NotNull(kinds::not_null::NotNull) => not_null,
    ForeignKey(kinds::foreign_key::ForeignKey) => foreign_key,
    Check(kinds::check::Check) => check,
    Unique(kinds::unique::Unique) => unique,
    PrimaryKey(kinds::primary_key::PrimaryKey) => primary_key,
    Index(kinds::index::Index) => index,
    Reindex(kinds::reindex::Reindex) => reindex,
    DropIndex(kinds::drop_index::DropIndex) => drop_index,
    Backfill(kinds::backfill::Backfill) => update,
    #[cfg(test)]
    TestNoop(kinds::test_noop::TestNoop) => test_noop,
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
