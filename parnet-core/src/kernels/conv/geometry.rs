//! The shapes of a convolution: [`Conv2dParams`] (stride, padding, groups) and the validated
//! [`Conv2dGeometry`] every kernel relies on.

use crate::error::{Result, invalid, shape_error};
use crate::kernels::im2col::PatchGeometry;

const OP: &str = "conv2d";

/// Stride, symmetric zero padding and groups of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
}

impl Conv2dParams {
    pub fn new(stride: usize, padding: usize, groups: usize) -> Self {
        Conv2dParams {
            stride,
            padding,
            groups,
        }
    }
}

impl Conv2dParams {
    /// Output length along one axis of `len` pixels for a `kernel`-wide window (also the
    /// pools' rule).
    pub fn out_len(&self, len: usize, kernel: usize) -> usize {
        (len + 2 * self.padding - kernel) / self.stride + 1
    }
}

impl Default for Conv2dParams {
    /// Stride 1, no padding, one group.
    fn default() -> Self {
        Conv2dParams::new(1, 0, 1)
    }
}

/// The validated shapes of a convolution: built by [`Conv2dGeometry::new`], which rejects every
/// inconsistent combination, so the kernels can rely on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    pub batch: usize,
    pub in_channels: usize,
    pub height: usize,
    pub width: usize,
    pub out_channels: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub params: Conv2dParams,
    pub out_h: usize,
    pub out_w: usize,
}

impl Conv2dGeometry {
    /// Checks `x_dims = [N, Cin, H, W]`, `w_dims = [Cout, Cin/groups, KH, KW]` and the params.
    pub fn new(x_dims: [usize; 4], w_dims: [usize; 4], params: Conv2dParams) -> Result<Self> {
        let [batch, in_channels, height, width] = x_dims;
        let [out_channels, in_per_group, kernel_h, kernel_w] = w_dims;
        let Conv2dParams {
            stride,
            padding,
            groups,
        } = params;
        if stride == 0 {
            return Err(invalid(OP, "stride must be at least 1"));
        }
        if groups == 0 {
            return Err(invalid(OP, "groups must be at least 1"));
        }
        if in_channels % groups != 0 || out_channels % groups != 0 {
            return Err(shape_error(
                OP,
                format!("groups {groups} must divide the input and output channels"),
                &[&x_dims, &w_dims],
            ));
        }
        if in_per_group * groups != in_channels {
            return Err(shape_error(
                OP,
                format!(
                    "weight has {in_per_group} input channels per group, the input {in_channels} \
                     channels in {groups} groups"
                ),
                &[&x_dims, &w_dims],
            ));
        }
        if kernel_h == 0
            || kernel_w == 0
            || out_channels == 0
            || in_channels == 0
            || height == 0
            || width == 0
        {
            return Err(shape_error(
                OP,
                "kernel, channel and image sizes must be non-zero (the batch may be empty)",
                &[&x_dims, &w_dims],
            ));
        }
        if height + 2 * padding < kernel_h || width + 2 * padding < kernel_w {
            return Err(shape_error(
                OP,
                format!("kernel larger than the input padded by {padding}: output size <= 0"),
                &[&x_dims, &w_dims],
            ));
        }
        Ok(Conv2dGeometry {
            batch,
            in_channels,
            height,
            width,
            out_channels,
            kernel_h,
            kernel_w,
            params,
            out_h: (height + 2 * padding - kernel_h) / stride + 1,
            out_w: (width + 2 * padding - kernel_w) / stride + 1,
        })
    }

    pub fn x_dims(&self) -> [usize; 4] {
        [self.batch, self.in_channels, self.height, self.width]
    }

    pub fn weight_dims(&self) -> [usize; 4] {
        [
            self.out_channels,
            self.in_per_group(),
            self.kernel_h,
            self.kernel_w,
        ]
    }

    pub fn out_dims(&self) -> [usize; 4] {
        [self.batch, self.out_channels, self.out_h, self.out_w]
    }

    pub fn in_per_group(&self) -> usize {
        self.in_channels / self.params.groups
    }

    pub fn out_per_group(&self) -> usize {
        self.out_channels / self.params.groups
    }

    /// Columns of one group's weight matrix: `Cin/groups * KH * KW`.
    pub fn taps_per_group(&self) -> usize {
        self.in_per_group() * self.kernel_h * self.kernel_w
    }

    /// FLOPs of the forward (2 per multiply-add, padding taps included):
    /// `2 N Cout Ho Wo (Cin/groups) KH KW`. The backward (input + weight) is twice this.
    pub fn forward_flops(&self) -> f64 {
        2.0 * (self.batch * self.out_channels * self.out_h * self.out_w) as f64
            * self.taps_per_group() as f64
    }

    /// Whether the convolution is a plain matrix product per image (1x1, stride 1, no padding).
    pub fn is_pointwise(&self) -> bool {
        self.kernel_h == 1
            && self.kernel_w == 1
            && self.params.stride == 1
            && self.params.padding == 0
    }

    /// The patch geometry of one group of one image.
    pub(crate) fn patches(&self) -> PatchGeometry {
        PatchGeometry {
            channels: self.in_per_group(),
            height: self.height,
            width: self.width,
            kernel_h: self.kernel_h,
            kernel_w: self.kernel_w,
            stride: self.params.stride,
            padding: self.params.padding,
            out_h: self.out_h,
            out_w: self.out_w,
        }
    }

    /// Checks a slice length against the element count of `dims`.
    pub(crate) fn check_len(what: &str, len: usize, dims: &[usize]) -> Result<()> {
        let want: usize = dims.iter().product();
        if len != want {
            return Err(shape_error(
                OP,
                format!("{what} has {len} values, its shape needs {want}"),
                &[dims],
            ));
        }
        Ok(())
    }
}
