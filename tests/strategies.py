"""Hypothesis strategies for well-conditioned gradient checks.

Finite differences measure a derivative only where it is large next to the
rounding noise eps * |f| / h, so values are drawn from bounded ranges (no
saturated sigmoids) and, for ReLU-family layers, away from the kink at 0.
"""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

dims = st.integers(1, 12)
batch = st.integers(1, 8)


def matrices(n, d, lo=-2.0, hi=2.0, away_from_zero=0.0):
    """float64 (n, d) arrays with entries in [lo, hi] and |entry| >= away_from_zero."""
    if away_from_zero:
        # magnitude and sign drawn separately (symmetric range), so nothing is filtered out
        assert lo == -hi
        elements = st.tuples(st.floats(away_from_zero, hi), st.booleans()).map(
            lambda ms: ms[0] if ms[1] else -ms[0])
    else:
        elements = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    return arrays(np.float64, (n, d), elements=elements)


@st.composite
def batch_and_dims(draw):
    return draw(batch), draw(dims), draw(dims)
