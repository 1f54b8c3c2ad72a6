"""aecore.nn: modules with PyTorch's names (Module, Parameter, Linear, Conv2d, ...), and Keras'
names for the layers PyTorch has no module for (ZeroPadding2D, Cropping2D, Reshape, Lambda)."""

from . import init  # noqa: F401
from . import utils  # noqa: F401  (clip_grad_norm_, clip_grad_value_, as torch.nn.utils)
from .layers import (Conv2d, ConvTranspose2d, Cropping2D, Flatten, Identity, Lambda,  # noqa: F401
                     LeakyReLU, Linear, MaxPool2d, ReLU, Reshape, Sequential, Sigmoid, Softplus,
                     Tanh, Unflatten, Upsample, UpsampleConv2d, ZeroPad2d, ZeroPadding2D)
from .module import Module, Parameter, RemovableHandle  # noqa: F401
from .layers import AdaptiveAvgPool2d, AvgPool2d  # noqa: F401,E402  (issue 17: average pooling)
# (issue 17) normalization, dropout, more activations, containers and loss modules
from .activation import ELU, GELU, LogSoftmax, Softmax  # noqa: F401,E402
from .containers import ModuleDict, ModuleList  # noqa: F401,E402
from .dropout import Dropout, Dropout2d  # noqa: F401,E402
from .loss import BCELoss, BCEWithLogitsLoss, L1Loss, MSELoss  # noqa: F401,E402
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm  # noqa: F401,E402
