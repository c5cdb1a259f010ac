//! Elementwise arithmetic.

pub mod add;
pub mod mul_channel;
pub mod scale;

pub use add::add;
pub use mul_channel::{mul_channel, mul_channel_reference};
pub use scale::{scale, scale_reference};
