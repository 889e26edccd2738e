"""Regenerate the example factor files shipped in this folder."""

import numpy as np

import dmfsharp as d

d.save_factors("examples/section6.npz", d.section6_example(), target=np.diag([11.0, 2.0, 1.0]))
chain = d.random_minimizer((3, 6, 5, 4, 2), seed=7)
d.save_factors("examples/deep_random.npz", chain, target=chain.product)
