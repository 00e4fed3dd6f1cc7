"""Evaluation: metrics, the Parzen window, the MNIST score, figures, and the report of a run."""
