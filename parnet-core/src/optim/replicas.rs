//! The parameter side of a data-parallel step: gradients averaged over the replicas (summed in
//! replica order, then divided by their count), and batch-norm running statistics averaged (for
//! runs whose batch norms are local, so that every replica keeps the same model).

use crate::nn::Module;
use crate::replicas::Replicas;

/// Every parameter gradient of `model` replaced by its mean over the replicas, through one
/// [`Replicas::sum_in_order`] of all gradients (in `visit_params` order, parameters without a
/// gradient skipped: the same on every replica, whose graphs are the same).
pub fn average_gradients(model: &dyn Module, replicas: &dyn Replicas) {
    if replicas.count() == 1 {
        return;
    }
    let mut flat = Vec::new();
    model.visit_params(&mut |p| {
        if let Some(g) = p.grad() {
            flat.extend_from_slice(&g);
        }
    });
    replicas.sum_in_order(&mut flat);
    let count = replicas.count() as f32;
    let mut at = 0;
    model.visit_params(&mut |p| {
        p.update_grad(|g| {
            for (v, &s) in g.iter_mut().zip(&flat[at..]) {
                *v = s / count;
            }
            at += g.len();
        })
    });
}

/// Every float state buffer of `model` that is not a counter (BN running means and variances)
/// replaced by its mean over the replicas (timm's `distribute_bn` "reduce").
pub fn average_state_buffers(model: &dyn Module, replicas: &dyn Replicas) {
    if replicas.count() == 1 {
        return;
    }
    let mut flat = Vec::new();
    model.visit_buffers(&mut |b| {
        if !b.integer {
            flat.extend_from_slice(&b.data.lock().unwrap_or_else(|e| e.into_inner()));
        }
    });
    replicas.sum_in_order(&mut flat);
    let count = replicas.count() as f32;
    let mut at = 0;
    model.visit_buffers(&mut |b| {
        if !b.integer {
            let mut data = b.data.lock().unwrap_or_else(|e| e.into_inner());
            for (v, &s) in data.iter_mut().zip(&flat[at..]) {
                *v = s / count;
            }
            at += data.len();
        }
    });
}
