"""The from-scratch core, read first: layers, activations, losses, optimizers, gradient checks.

Nothing here imports from the rest of ``aae_np``.
"""

from aae_np.nn.activations import (Identity, LeakyReLU, ReLU, Sigmoid, Tanh, sigmoid, softmax,
                                   softmax_backward)
from aae_np.nn.base import Layer, NonFiniteError
from aae_np.nn.batchnorm import BatchNorm
from aae_np.nn.dropout import Dropout
from aae_np.nn.layers import Dense, Sequential
from aae_np.nn.optim import SGD, Adam, Momentum, Optimizer

__all__ = ["Layer", "NonFiniteError", "Dense", "Sequential", "ReLU", "LeakyReLU", "Sigmoid", "Tanh",
           "Identity", "BatchNorm", "Dropout", "sigmoid", "softmax", "softmax_backward", "SGD", "Momentum", "Adam", "Optimizer"]
