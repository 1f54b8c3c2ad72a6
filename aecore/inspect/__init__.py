"""aecore.inspect: seeing inside the engine.

- summary(model, input_shape)      layers, output shapes, parameters, FLOPs, activation memory
- graph(tensor, model=None)        the graph behind a tensor: .text() (a tree), .dot() (Graphviz)
- capture(model, x) / layer_stats  every layer's activation and gradient for one batch, and the
                                   statistics that show dead ReLUs and vanishing gradients
- profile()                        `with aecore.profile() as prof:` every op call, timed, with
                                   FLOPs, bytes, GFLOP/s, GB/s and the share of the machine's peak
- costs.op_cost, peak.machine_peak the FLOP/byte formulas and the measured machine peak (also
                                   used by bench/)
- cli.add_subcommands              `aecore inspect graph|summary|stats` and `aecore bench ...`
"""

from . import costs, peak  # noqa: F401
from .costs import op_cost  # noqa: F401
from .graph import Graph, graph  # noqa: F401
from .hooks import Capture, capture, layer_stats  # noqa: F401
from .peak import machine_peak  # noqa: F401
from .profiler import Profiler, profile, profile_one_epoch  # noqa: F401
from .summary import Summary, summary  # noqa: F401

__all__ = ["summary", "Summary", "graph", "Graph", "capture", "Capture", "layer_stats", "profile",
           "Profiler", "profile_one_epoch", "op_cost", "machine_peak", "costs", "peak"]
