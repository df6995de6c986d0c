"""Registry of experiments: id -> module (imported lazily, so `list` and `plot` stay light)."""
from __future__ import annotations

import importlib

from theoryrl.core.config import ConfigError


class UnknownExperiment(ConfigError, KeyError):
    """An experiment id not in MODULES: a user error (ConfigError), and a KeyError for lookups."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

MODULES = {
    "chain-emergence": "theoryrl.experiments.chain_emergence",
    "chain-ood": "theoryrl.experiments.chain_ood",
    "chain-simple-vs-hard": "theoryrl.experiments.chain_simple_vs_hard",
    "chain-simple-mass": "theoryrl.experiments.chain_simple_mass",
    "chain-flow-scaling": "theoryrl.experiments.chain_flow_scaling",
    "chain-flow-structure": "theoryrl.experiments.chain_flow_structure",
    "chain-flow-vs-reinforce": "theoryrl.experiments.chain_flow_vs_reinforce",
    "bandit-regret": "theoryrl.experiments.bandit_regret",
    "bandit-diversity": "theoryrl.experiments.bandit_diversity",
    "affine-uniform-vs-hard": "theoryrl.experiments.affine_uniform_vs_hard",
    "parity-threshold": "theoryrl.experiments.parity_threshold",
    "parity-star": "theoryrl.experiments.parity_star",
    "parity-rl": "theoryrl.experiments.parity_rl",
    "parity-leap2": "theoryrl.experiments.parity_leap2",
    "parity-separation": "theoryrl.experiments.parity_separation",
    "dag-edge-of-competence": "theoryrl.experiments.dag_edge_of_competence",
    "dag-process-reward": "theoryrl.experiments.dag_process_reward",
    "dag-midtrain-rl-split": "theoryrl.experiments.dag_midtrain_rl_split",
    "dag-context-exposure": "theoryrl.experiments.dag_context_exposure",
    "dag-pretrain-hard-exposure": "theoryrl.experiments.dag_pretrain_hard_exposure",
    "explore-rl-as-sampling": "theoryrl.experiments.explore_rl_as_sampling",
    "explore-historical": "theoryrl.experiments.explore_historical",
    "explore-batch": "theoryrl.experiments.explore_batch",
    "explore-ablations": "theoryrl.experiments.explore_ablations",
    "rlvr-passk-crossing": "theoryrl.experiments.rlvr_passk_crossing",
    "rlvr-coverage": "theoryrl.experiments.rlvr_coverage",
    "rlvr-distillation": "theoryrl.experiments.rlvr_distillation",
    "rlvr-steps": "theoryrl.experiments.rlvr_steps",
    "rlvr-algorithms": "theoryrl.experiments.rlvr_algorithms",
    "rlvr-ablations": "theoryrl.experiments.rlvr_ablations",
    "rlvr-vs-edge": "theoryrl.experiments.rlvr_vs_edge",
}


def get(experiment_id: str):
    if experiment_id not in MODULES:
        raise UnknownExperiment(f"unknown experiment '{experiment_id}' (known: {', '.join(MODULES)})")
    return importlib.import_module(MODULES[experiment_id])
