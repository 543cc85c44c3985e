r"""Natural policy gradient (Kakade 2002), in the batch form of the TRPO paper.

    g = \nabla_\theta E_t[ \pi_\theta(a_t|s_t) / \pi_{\theta_k}(a_t|s_t) \hat{A}_t ] at \theta_k
    H = Fisher information matrix of \pi_{\theta_k} (Hessian of the mean KL)
    \theta_{k+1} = \theta_k + \sqrt{2\delta / g^T H^{-1} g} H^{-1} g          (no line search)

H^{-1} g comes from conjugate gradient on Fisher-vector products; advantages are GAE and the value
function is fitted by regression. The machinery is TRPO's (``pgzoo.algos.trpo``) without the
backtracking line search; only the step differs.
"""
from __future__ import annotations

from dataclasses import dataclass

from pgzoo.algos import trpo
from pgzoo.algos.base import Agent

ACTION_SPACES = trpo.ACTION_SPACES
DEFAULT_TOTAL_STEPS = 500_000  # the CartPole-v1 budget of the benchmark


@dataclass(frozen=True)
class Config(trpo.Config):
    """TRPO's settings; the line-search fields are unused by NPG."""


def make(config: Config, env, total_steps: int) -> Agent:
    return trpo.make(config, env, total_steps, line_search=False)
