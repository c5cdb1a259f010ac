//! Activations on slices: SiLU, sigmoid and ReLU as scalar functions (shared with the fused
//! kernels) and single-threaded slice kernels, and the fast `exp` they use.

pub mod fast_exp;
pub mod relu;
pub mod sigmoid;
pub mod silu;

pub use fast_exp::exp_f32;
pub use relu::{relu_backward, relu_forward, relu_in_place};
pub use sigmoid::{sigmoid_backward, sigmoid_forward, sigmoid_in_place};
pub use silu::{silu_backward, silu_forward, silu_in_place};

/// The block activation. The paper uses SiLU; the released configs build ReLU (spec 2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Silu,
    Relu,
}

impl Activation {
    pub fn parse(s: &str) -> crate::error::Result<Activation> {
        match s.to_ascii_lowercase().as_str() {
            "silu" | "swish" => Ok(Activation::Silu),
            "relu" => Ok(Activation::Relu),
            other => Err(crate::error::invalid(
                "activation",
                format!("unknown activation {other:?} (expected silu or relu)"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Silu => "silu",
            Activation::Relu => "relu",
        }
    }
}
