//! The web console's HTML: pure functions from view models to pages, with no HTTP in them.
//!
//! - [`charts`]: the hand-built SVG charts the overview draws.
//! - [`i18n`]: the two languages and every label in both.

pub mod charts;
pub mod i18n;
