//! The one integration-test binary: pure tables for the resolver and the
//! permission evaluator, store tests on a real PostgreSQL (a fresh database
//! each), CLI tests running the binary, the report ≡ resolver property, and
//! the private-cluster path.

mod app_migrations;
mod attach;
mod attach_lifecycle;
mod baseline;
mod cli;
mod cluster;
mod console;
mod console_history;
mod console_merge;
mod contexts;
mod django;
mod domain_permissions;
mod domain_resolve;
mod endpoints;
mod fast_lookup;
mod history;
mod history_prop;
mod impact_scoped;
mod json_schema;
mod lean_start;
mod loose_tables;
mod manners;
mod odd_json;
mod outside_app;
mod overlays;
mod owner_rights;
mod permissions_sql;
mod pictures;
mod policy_reads;
mod pty;
mod readme;
mod registry_data;
mod registry_sql;
mod report_prop;
mod restore;
mod scoped;
mod secrets;
mod store;
mod support;
mod tcp;
mod trust;
