//! Everything that talks to PostgreSQL.

pub mod cluster;
pub mod connect;
pub mod observe;
pub(crate) mod tx;
