"""Collection rules for the doctest run over ``src/dmfsharp`` (``--doctest-modules``).

The compiled GD kernel imports numba at module level (it is only imported when the numba
engine is selected); without the optional extra it is not collected.
"""

import importlib.util

collect_ignore = []
if importlib.util.find_spec("numba") is None:
    collect_ignore.append("src/dmfsharp/dynamics/numba_kernel.py")
