"""Shared simulations for the simulator tests (small windows; built once per module)."""

from __future__ import annotations

import pytest

from simulator.api import simulate


@pytest.fixture(scope="module")
def small_sim():
    """20 virtual minutes of the 3-node fleet (H100 dense vLLM, H200 SGLang MoE, A100 vLLM MoE)."""
    return simulate(hours=1 / 3, nodes=3, seed=11)
