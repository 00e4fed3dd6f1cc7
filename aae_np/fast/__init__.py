"""The speed path: Numba kernels (each beside its NumPy twin), the fused runner, the flat
optimizer, and the one place a backend is chosen (``backend.py``)."""
