"""An optimizer that steps every rank with the gradients of all of them (ChainerMN's
create_multi_node_optimizer), for a training loop of your own.

    world = aecore.distributed.init()
    optimizer = aecore.distributed.MultiNodeOptimizer(optim.Adam(model.parameters()), world)
    for xb, _ in ShardedLoader(images, batch_size=64 * world.size, rank=world.rank,
                               size=world.size):
        optimizer.zero_grad()
        model.loss(xb)[0].backward()
        optimizer.step()          # averages the gradients across the ranks, then steps

Made, it gives every rank rank 0's parameters (and buffers, with module=), so the ranks start
equal. step() averages (sum / ranks): right when every rank's loss is the mean over an equal
share of the batch. With unequal shares, weight each rank by its share: step(weight=n / total).
aecore's Trainer does that itself and needs no wrapper.
"""

from __future__ import annotations

__all__ = ["MultiNodeOptimizer", "create_multi_node_optimizer"]


class MultiNodeOptimizer:
    """`optimizer`, whose step() first sums weight * gradient over the ranks of `world`."""

    def __init__(self, optimizer, world, module=None):
        self.optimizer, self.world = optimizer, world
        if module is not None:
            world.broadcast_parameters(module)
        else:
            world._broadcast_host_arrays([p.data for p in optimizer.params],
                                         "the broadcast of the parameters") \
                if world.size > 1 else None

    def step(self, weight=None):
        """Sum weight * grad over the ranks (weight None: 1 / ranks, the average), then step."""
        weight = 1.0 / self.world.size if weight is None else float(weight)
        self.world.allreduce_gradients(self.optimizer.params, weight)
        return self.optimizer.step()

    def __getattr__(self, name):            # zero_grad, state_dict, param_groups, lr, ...
        return getattr(self.optimizer, name)


def create_multi_node_optimizer(optimizer, world, module=None):
    """MultiNodeOptimizer(optimizer, world, module), under ChainerMN's name."""
    return MultiNodeOptimizer(optimizer, world, module)
