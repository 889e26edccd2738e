"""
Sharpness of a PyTorch network
==============================

A bias-free ``nn.Sequential`` of ``nn.Linear`` layers is a deep matrix factorization.
We build a random one, read its weights with :func:`dmfsharp.from_torch`
and compare the exact sharpness at the minimum of its own product with an autograd
Hessian of the same loss.
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

import dmfsharp as dmf

torch.manual_seed(0)
net = torch.nn.Sequential(
    torch.nn.Linear(4, 6, bias=False),
    torch.nn.Linear(6, 5, bias=False),
    torch.nn.Linear(5, 3, bias=False),
).double()
chain = dmf.from_torch(net)
print("dims", chain.dims)

exact = dmf.sharpness(chain)  # target = the network's own product: a global minimum

# The same number by autograd: the Hessian of ||M - W3 W2 W1||_F^2 at the weights.
M = torch.as_tensor(np.asarray(chain.product))
params = [p.detach().clone() for p in net.parameters()]
shapes = [p.shape for p in params]
flat = torch.cat([p.reshape(-1) for p in params])


def loss_of(v):
    ws, i = [], 0
    for s in shapes:
        n = s[0] * s[1]
        ws.append(v[i : i + n].reshape(s))
        i += n
    return ((M - ws[2] @ ws[1] @ ws[0]) ** 2).sum()


H = torch.autograd.functional.hessian(loss_of, flat)
eig = torch.linalg.eigvalsh(H).numpy()
print(f"exact {exact:.12g}  autograd {eig[-1]:.12g}")

fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
ax.semilogy(np.arange(1, eig.size + 1), np.sort(np.abs(eig))[::-1] + 1e-300, ".", label="autograd |eig(H)|")
spec = dmf.hessian_spectrum(chain)
ax.semilogy(np.arange(1, spec.size + 1), spec, "x", label="dmfsharp hessian_spectrum")
ax.set_xlabel("index")
ax.set_ylabel("Hessian eigenvalue")
ax.set_title("nonzero spectrum = 2 eig(S); the rest are zero")
ax.legend(loc="upper right")
