//! Elementwise arithmetic.

pub mod add;

pub use add::add;
