"""Golden values for parnet-core's SGD: a few torch.optim.SGD steps (momentum 0.9, Nesterov,
weight decay only on >1-D parameters, as timm's add_weight_decay) on fixed weights and
gradients. Writes parnet-core/tests/fixtures/sgd.safetensors (deterministic).

    python3 tools/make_sgd_golden.py
"""
import torch
from safetensors.torch import save_file

torch.manual_seed(0)
w = torch.randn(4, 3, dtype=torch.float64)
b = torch.randn(4, dtype=torch.float64)
grads = [(torch.randn(4, 3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)) for _ in range(3)]
lrs = [0.1, 0.05, 0.02]
out = {"w0": w.float(), "b0": b.float()}
pw, pb = w.float().double().clone().requires_grad_(), b.float().double().clone().requires_grad_()
opt = torch.optim.SGD(
    [{"params": [pw], "weight_decay": 1e-2}, {"params": [pb], "weight_decay": 0.0}],
    lr=0.1, momentum=0.9, nesterov=True,
)
for k, ((gw, gb), lr) in enumerate(zip(grads, lrs)):
    for g in opt.param_groups:
        g["lr"] = lr
    pw.grad = gw.float().double()
    pb.grad = gb.float().double()
    opt.step()
    out[f"gw{k}"] = gw.float()
    out[f"gb{k}"] = gb.float()
    out[f"w{k + 1}"] = pw.detach().float()
    out[f"b{k + 1}"] = pb.detach().float()
out["lrs"] = torch.tensor(lrs, dtype=torch.float32)
save_file({k: v.contiguous() for k, v in sorted(out.items())}, "parnet-core/tests/fixtures/sgd.safetensors")
print("wrote sgd.safetensors:", sorted(out))
