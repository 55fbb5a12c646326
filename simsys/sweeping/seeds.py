"""Replication seeds: the same replication sees the same random numbers at every grid
point and in every variant (common random numbers).
"""

from __future__ import annotations

import numpy as np


def replication_seed(base_seed: int, replication: int) -> int:
    """The seed of replication ``replication``, the same at every grid point.

    Equal to ``SeedSequence(base_seed).spawn(replication + 1)[replication].generate_state(1)[0]``.

    >>> replication_seed(0, 0) == replication_seed(0, 0) != replication_seed(0, 1)
    True
    """
    ss = np.random.SeedSequence(int(base_seed), spawn_key=(int(replication),))
    return int(ss.generate_state(1, dtype=np.uint32)[0])
