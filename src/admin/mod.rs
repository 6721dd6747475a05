//! The web console's HTML: pure functions from view models to pages, with no HTTP in them.
//!
//! - [`pages`]: one function per page, each a whole document, and the view models the
//!   handlers fill.
//! - [`charts`]: the hand-built SVG charts the overview draws.
//! - [`i18n`]: the two languages and every label in both.
//!
//! Every value reaches the HTML through maud, which escapes it; nothing from a feed or the
//! configuration is ever written with `PreEscaped`.

pub mod charts;
pub mod i18n;
pub mod pages;
