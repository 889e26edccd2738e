"""
Weight decay: the collapse threshold and the sharpness of regularized minima
============================================================================

With weight decay the loss is ``L_mu(w) = ||M - W_L ... W_1||_F^2 + mu sum_k ||W_k||_F^2``.
Every global minimizer is balanced and carries, on each singular direction of ``M``, the
minimizer ``s`` of the scalar problem ``(sigma - s^L)^2 + mu L s^2``
(:func:`dmfsharp.regularized_minimizer`). Left: ``s^L`` against ``mu / mu*`` for
``sigma = 1``: soft-thresholding for ``L = 2``, a jump to zero at the collapse threshold
``mu*`` (:func:`dmfsharp.weight_decay_threshold`) for ``L >= 3``. Right: the exact
``lambda_max`` of the Hessian of ``L_mu`` at the global minimizer
(``dmfsharp.sharpness(..., weight_decay=mu)``; the residual term is kept), checked against
the dense Hessian, and the step-size threshold ``2 / lambda_max`` it sets for gradient descent.
"""

import matplotlib.pyplot as plt
import numpy as np

import dmfsharp as dmf

fracs = np.linspace(0.0, 1.5, 150)  # avoids mu = mu* exactly, the tie
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained")
for L in (2, 3, 4, 8):
    mu_star = dmf.weight_decay_threshold([[1.0]], L)
    p = [dmf.scalar_minimizer(1.0, L, weight_decay=f * mu_star) ** L for f in fracs]
    ax1.plot(fracs, p, label=f"L = {L}")
ax1.axvline(1.0, color="0.5", ls=":")
ax1.set_xlabel(r"$\mu / \mu^*$")
ax1.set_ylabel(r"end-to-end singular value $s^L$ ($\sigma = 1$)")
ax1.set_title("minimizer of the scalar problem")
ax1.legend()

m = np.diag([2.0, 0.7])
dims = (2, 3, 3, 2)
mu_star = dmf.weight_decay_threshold(m, 3)
mus = np.linspace(0.0, 1.3, 28) * mu_star
lams = []
for mu in mus:
    w = dmf.regularized_minimizer(m, dims, weight_decay=mu, seed=1)
    lams.append(dmf.sharpness(w, target=m, weight_decay=mu) if mu > 0 else dmf.sharpness(w))
mu = 0.5 * mu_star
w = dmf.regularized_minimizer(m, dims, weight_decay=mu, seed=1)
exact = dmf.sharpness(w, target=m, weight_decay=mu)
dense = np.linalg.eigvalsh(dmf.dense_hessian(w, target=m, weight_decay=mu))[-1]
print(f"mu* = {mu_star:.6f}; at mu = mu*/2: lambda_max = {exact:.12f}, dense eigh {dense:.12f}")
ax2.plot(mus / mu_star, lams, "o-", ms=3, label=r"$\lambda_{\max}(\nabla^2 L_\mu)$ at the minimizer")
ax2.plot(mus / mu_star, 2 * mus, "--", color="0.5", label=r"$2\mu$ (Hessian at $W = 0$)")
ax2.set_xlabel(r"$\mu / \mu^*$")
ax2.set_ylabel(r"$\lambda_{\max}$")
ax2.set_title(r"$M = \mathrm{diag}(2, 0.7)$, widths 2, 3, 3, 2")
ax2.legend()
plt.show()
