//! Everything that talks to PostgreSQL.

pub mod cluster;
pub mod connect;
pub mod observe;
pub mod pooler;
pub mod replication;
pub(crate) mod tx;
