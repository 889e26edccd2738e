"""Linear algebra kernels: the Kronecker-sum operator S, the certified eigensolver, rescaling."""
