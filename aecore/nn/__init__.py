"""aecore.nn: modules with PyTorch's names (Module, Parameter, Linear, Conv2d, ...)."""

from . import init  # noqa: F401
from .layers import (Conv2d, ConvTranspose2d, Flatten, Identity, LeakyReLU, Linear, MaxPool2d,  # noqa: F401
                     ReLU, Sequential, Sigmoid, Softplus, Tanh, Unflatten, Upsample, UpsampleConv2d)
from .module import Module, Parameter, RemovableHandle  # noqa: F401
