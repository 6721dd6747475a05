//! The web console's HTML: pure functions from view models to pages, with no HTTP in them.
//!
//! - [`i18n`]: the two languages and every label in both.

pub mod i18n;
