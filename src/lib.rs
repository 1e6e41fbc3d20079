//! lockstep: lint PostgreSQL migrations for locks and rewrites, and change schemas online.

pub mod baseline;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod files;
pub mod fixing;
pub mod framework;
pub mod git;
pub mod lint;
pub mod order;
pub mod playbook;
pub mod report;
pub mod sql;
pub mod trace;
