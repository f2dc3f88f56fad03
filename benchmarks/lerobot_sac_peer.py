"""LeRobot 0.4.4's SAC, timed the way its learner runs it; prints one JSON line. Runs in .venv-lerobot.

    .venv-lerobot/bin/python benchmarks/lerobot_sac_peer.py --threads 2 --seconds 10 [--utd 8] [--num-critics 10]

One optimization step is what ``lerobot/rl/learner.py::add_actor_information_and_train`` does per
step: ``utd_ratio - 1`` critic-only steps, then a critic step, an actor step and a temperature
step (each ``policy.forward(batch, model=...)``, backward, ``clip_grad_norm_``, Adam from its
``make_optimizers_and_scheduler``), ``update_target_networks()`` after every critic step, and the
``.item()`` reads of its logging. State observations (13 floats), 4-dim actions, batch 256, its
default SACConfig otherwise (N=2 critics, 256-256). The rate counts critic updates per second.

torchvision: LeRobot imports it at module level (``lerobot.datasets``), and the only torchvision
wheel here is built against CUDA torch (its ``_C.so`` needs ``libtorch_cuda.so``), so it cannot
load beside the 2.13.0 CPU torch. SAC never calls it. :func:`block_torchvision` serves every
``torchvision`` import with a placeholder whose classes and functions raise NotImplementedError
when used, so any real use would fail loudly instead of timing something else.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import json
import sys
import time
import types


def _raise_absent(name: str):
    def absent(*args, **kwargs):
        raise NotImplementedError(f"{name}: torchvision cannot load beside the CPU torch in this venv")

    return absent


class _AbsentModule(types.ModuleType):
    """A placeholder module: attributes are placeholder classes (capitalized) or submodules."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        qualified = f"{self.__name__}.{name}"
        if name[:1].isupper():  # subclassable; instantiating raises
            return type(name, (), {"__init__": _raise_absent(qualified), "__module__": self.__name__})
        return _AbsentModule(qualified)

    def __call__(self, *args, **kwargs):
        _raise_absent(self.__name__)()


class _BlockTorchvision(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name == "torchvision" or name.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return _AbsentModule(spec.name)

    def exec_module(self, module):
        module.__path__ = []


def block_torchvision() -> None:
    sys.meta_path.insert(0, _BlockTorchvision())


def build(num_critics: int, utd_ratio: int, state_dim: int = 13, action_dim: int = 4):
    import torch
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.sac.configuration_sac import SACConfig
    from lerobot.policies.sac.modeling_sac import SACPolicy

    config = SACConfig(
        input_features={"observation.state": PolicyFeature(type=FeatureType.STATE, shape=(state_dim,))},
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(action_dim,))},
        dataset_stats={"observation.state": {"min": [-1.0] * state_dim, "max": [1.0] * state_dim},
                       "action": {"min": [-1.0] * action_dim, "max": [1.0] * action_dim}},
        num_critics=num_critics, utd_ratio=utd_ratio, device="cpu",
    )
    policy = SACPolicy(config)
    policy.train()
    optimizers = {  # as lerobot/rl/learner.py::make_optimizers_and_scheduler builds them
        "actor": torch.optim.Adam([p for n, p in policy.actor.named_parameters()
                                   if not config.shared_encoder or not n.startswith("encoder")], lr=config.actor_lr),
        "critic": torch.optim.Adam(policy.critic_ensemble.parameters(), lr=config.critic_lr),
        "temperature": torch.optim.Adam([policy.log_alpha], lr=config.critic_lr),
    }
    return policy, optimizers, config


def random_batch(size: int, state_dim: int = 13, action_dim: int = 4) -> dict:
    import torch

    g = torch.Generator().manual_seed(0)
    return {"action": torch.rand(size, action_dim, generator=g) * 2 - 1, "reward": torch.rand(size, generator=g),
            "state": {"observation.state": torch.randn(size, state_dim, generator=g)},
            "next_state": {"observation.state": torch.randn(size, state_dim, generator=g)},
            "done": (torch.rand(size, generator=g) < 0.05).float(),
            "observation_feature": None, "next_observation_feature": None, "complementary_info": None}


def _step(policy, optimizers, name: str, batch: dict, params, clip: float) -> float:
    import torch

    loss = policy.forward(batch, model=name)[f"loss_{name}"]
    optimizers[name].zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters=params, max_norm=clip)
    optimizers[name].step()
    return loss.item()


def optimization_step(policy, optimizers, config, batch: dict) -> None:
    clip = config.grad_clip_norm
    for _ in range(config.utd_ratio - 1):
        _step(policy, optimizers, "critic", batch, policy.critic_ensemble.parameters(), clip)
        policy.update_target_networks()
    _step(policy, optimizers, "critic", batch, policy.critic_ensemble.parameters(), clip)
    _step(policy, optimizers, "actor", batch, policy.actor.parameters(), clip)
    _step(policy, optimizers, "temperature", batch, [policy.log_alpha], clip)
    policy.update_target_networks()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--utd", type=int, default=1)
    parser.add_argument("--num-critics", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    block_torchvision()
    import torch
    import lerobot

    torch.set_num_threads(args.threads)
    policy, optimizers, config = build(args.num_critics, args.utd)
    batch = random_batch(args.batch_size)
    optimization_step(policy, optimizers, config, batch)  # warm-up
    count, cpu0, start = 0, time.process_time(), time.perf_counter()
    while time.perf_counter() - start < args.seconds or count < 3:
        optimization_step(policy, optimizers, config, batch)
        count += 1
    wall_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu0
    critic_updates = count * args.utd
    print(json.dumps({"peer": f"lerobot {lerobot.__version__} SAC", "torch": torch.__version__, "threads": args.threads,
                      "num_critics": args.num_critics, "utd": args.utd, "updates_per_s": critic_updates / wall_s,
                      "cpu_ms_per_update": 1e3 * cpu_s / critic_updates}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
