//! The plain reference of the merge: the unfused definition, generic over f32/f64.

use num_traits::Float;

use crate::ops::activation::{Activation, relu_reference, silu_reference};
use crate::ops::batch_norm::batch_norm2d_train_reference;

/// `act((BN_d(u) + BN_1(v)) + BN_id(x) * g)` with `identity = Some((x, gamma, beta))`, else
/// `act((BN_d(u) + BN_1(v)) * g)`; every normalisation with its own batch statistics. `bn` holds
/// `(gamma, beta)` of the dense and 1x1 normalisations, `gate` is `[N, C]`.
pub fn rep_merge_train_reference<T: Float>(
    (u, v): (&[T], &[T]),
    dims: [usize; 4],
    bn: [(&[T], &[T]); 2],
    gate: &[T],
    identity: Option<(&[T], &[T], &[T])>,
    activation: Activation,
    eps: T,
) -> Vec<T> {
    let hw = dims[2] * dims[3];
    let d = batch_norm2d_train_reference(u, dims, bn[0].0, bn[0].1, eps);
    let o = batch_norm2d_train_reference(v, dims, bn[1].0, bn[1].1, eps);
    let id = identity.map(|(x, g, b)| batch_norm2d_train_reference(x, dims, g, b, eps));
    let z: Vec<T> = (0..d.len())
        .map(|i| {
            let (convs, g) = (d[i] + o[i], gate[i / hw]);
            match &id {
                Some(id) => convs + id[i] * g,
                None => convs * g,
            }
        })
        .collect();
    match activation {
        Activation::Silu => silu_reference(&z),
        Activation::Relu => relu_reference(&z),
    }
}
