//! SGD (momentum 0.9, Nesterov, weight decay on the 2-D weight only) against torch.optim.SGD.
//! Fixture: tools/make_sgd_golden.py (torch computes in f64 from the f32 inputs).

use std::path::Path;

use parnet_core::io::read_tensors;
use parnet_core::optim::{Sgd, SgdConfig};
use parnet_core::{Buffer, Param};

#[test]
fn three_nesterov_steps_match_pytorch() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sgd.safetensors");
    let (tensors, _) = read_tensors(&path).unwrap();
    let get = |name: &str| {
        tensors
            .iter()
            .find(|t| t.name == name)
            .unwrap()
            .data
            .clone()
    };
    let w = Param::new("w", Buffer::from_vec(get("w0")), [4, 3]).unwrap();
    let b = Param::new("b.bias", Buffer::from_vec(get("b0")), [4]).unwrap();
    let config = SgdConfig {
        momentum: 0.9,
        dampening: 0.0,
        nesterov: true,
        weight_decay: 1e-2,
    };
    let mut sgd = Sgd::new(vec![w.clone(), b.clone()], config).unwrap();
    for (k, lr) in get("lrs").into_iter().enumerate() {
        w.tensor()
            .backward_with(Buffer::from_vec(get(&format!("gw{k}"))))
            .unwrap();
        b.tensor()
            .backward_with(Buffer::from_vec(get(&format!("gb{k}"))))
            .unwrap();
        sgd.step(lr);
        sgd.zero_grad();
        for (p, name) in [(&w, format!("w{}", k + 1)), (&b, format!("b{}", k + 1))] {
            for (got, want) in p.to_vec().iter().zip(get(&name)) {
                assert!(
                    (got - want).abs() <= 1e-6 + 1e-6 * want.abs(),
                    "{name}: {got} vs {want}"
                );
            }
        }
    }
}
