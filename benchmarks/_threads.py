"""Thread counts for every benchmark; imported first, before NumPy, SciPy or PyTorch load.

BLAS libraries read their thread variables once, when they are loaded: setting them after
``import numpy`` leaves OpenBLAS with one thread per core, and with process-CPU timing the
idle spinning of the extra thread is charged to whatever runs next. Every ``bench_*.py``
therefore imports this module before anything numerical; ``common.verify_threads`` then
checks the live thread pools (threadpoolctl, ``torch.get_num_threads``) inside the run
and the results file records what it found, with the load average before and after.

``DMF_BENCH_THREADS`` (default 1) sets the count. ``OPENBLAS_CORETYPE`` is recorded, not
changed: where the machine sets it, unset it (with ``OPENBLAS_L2_SIZE``) for the benchmark
command alone, and check the kernel threadpoolctl reports.
"""

import os

THREADS = int(os.environ.get("DMF_BENCH_THREADS", "1"))
_VARS = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)
for _var in _VARS:
    os.environ[_var] = str(THREADS)

#: ``os.getloadavg()`` when the benchmark process started (1, 5, 15 minutes).
LOAD_AT_START = os.getloadavg()
