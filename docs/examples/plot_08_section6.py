"""
The Section 6 example and the manifold walk
===========================================

Section 6 of the paper gives a depth-2 minimizer whose sharpness is exactly 44: it is flat
(it attains the lower bound of Mulayoff and Michaeli, 2020) although it is not
Frobenius-balanced. :func:`dmfsharp.minima_path` walks minimizers of one target from the
balanced one through flat ones to sharp ones; along the flat stretch ``lambda_max`` stays at
the flat value while the trace and the Frobenius imbalance move.
"""

import numpy as np

import dmfsharp as dmf

w = dmf.section6_example()
print("lambda_max =", dmf.sharpness(w))  # 44, exactly
print("flat value =", dmf.flat_sharpness(w.product, depth=w.depth))
print("Frobenius imbalance =", dmf.frobenius_imbalance(w))

path = dmf.minima_path(np.asarray(w.product), num=61)
fig = dmf.plot_minima_path(path)
