//! `Conv2d`: a convolution layer (PyTorch layout and default initialisation).

use super::{Init, Module, join_name};
use crate::Param;
use crate::error::Result;
use crate::ops::conv2d::{Conv2dParams, conv2d};
use crate::tensor::{Buffer, Tensor};

/// Weight `[out, in/groups, k, k]` (key `<prefix>.weight`), optional bias `[out]`.
pub struct Conv2d {
    pub weight: Param,
    pub bias: Option<Param>,
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub params: Conv2dParams,
}

impl Conv2d {
    /// PyTorch's default init: weight and bias U(±1/sqrt(fan_in)), fan_in = in/groups·k·k.
    pub fn new(
        prefix: &str,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        params: Conv2dParams,
        bias: bool,
        init: Init,
    ) -> Result<Conv2d> {
        let fan_in = in_channels / params.groups * kernel * kernel;
        let bound = 1.0 / (fan_in as f32).sqrt();
        let w_name = join_name(prefix, "weight");
        let shape = [out_channels, in_channels / params.groups, kernel, kernel];
        let weight = Param::new(
            w_name.clone(),
            init.uniform(&w_name, shape.iter().product(), bound),
            shape,
        )?;
        let bias = if bias {
            let b_name = join_name(prefix, "bias");
            Some(Param::new(
                b_name.clone(),
                init.uniform(&b_name, out_channels, bound),
                [out_channels],
            )?)
        } else {
            None
        };
        Ok(Conv2d {
            weight,
            bias,
            in_channels,
            out_channels,
            kernel,
            params,
        })
    }

    /// A layer with the given weight (and bias) values, e.g. from reparameterization.
    pub fn from_values(
        prefix: &str,
        weight: Vec<f32>,
        bias: Option<Vec<f32>>,
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        params: Conv2dParams,
    ) -> Result<Conv2d> {
        let shape = [out_channels, in_channels / params.groups, kernel, kernel];
        let weight = Param::new(join_name(prefix, "weight"), Buffer::from_vec(weight), shape)?;
        let bias = match bias {
            Some(b) => Some(Param::new(
                join_name(prefix, "bias"),
                Buffer::from_vec(b),
                [out_channels],
            )?),
            None => None,
        };
        Ok(Conv2d {
            weight,
            bias,
            in_channels,
            out_channels,
            kernel,
            params,
        })
    }

    /// x `[N, in, H, W]` -> `[N, out, H', W']`.
    pub fn forward(&self, x: &Tensor, track: bool) -> Result<Tensor> {
        let w = self.weight.get(track);
        let b = self.bias.as_ref().map(|b| b.get(track));
        conv2d(x, &w, b.as_ref(), self.params)
    }

    /// The output size `(ho, wo)` for an `h x w` input.
    pub fn out_size(&self, h: usize, w: usize) -> (usize, usize) {
        (
            self.params.out_len(h, self.kernel),
            self.params.out_len(w, self.kernel),
        )
    }

    /// Multiply-adds per image on an `h x w` input, and the output size.
    pub fn macs_at(&self, (h, w): (usize, usize)) -> (usize, (usize, usize)) {
        let (ho, wo) = self.out_size(h, w);
        (self.macs(ho, wo), (ho, wo))
    }

    /// Multiply-adds for an output of `ho x wo` pixels, per image.
    pub fn macs(&self, ho: usize, wo: usize) -> usize {
        ho * wo
            * self.out_channels
            * (self.in_channels / self.params.groups)
            * self.kernel
            * self.kernel
    }
}

impl Module for Conv2d {
    fn visit_params(&self, f: &mut dyn FnMut(&Param)) {
        f(&self.weight);
        if let Some(b) = &self.bias {
            f(b);
        }
    }
}

impl Conv2d {
    /// An independent copy.
    pub fn deep_clone(&self) -> Conv2d {
        Conv2d {
            weight: super::copy_param(&self.weight),
            bias: self.bias.as_ref().map(super::copy_param),
            ..*self
        }
    }
}
