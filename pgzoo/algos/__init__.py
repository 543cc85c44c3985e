"""One module per algorithm; ``ALGORITHMS`` maps the names ``pgzoo train`` accepts to their
contract declarations (``pgzoo.algos.base.Algorithm``). Registering a new algorithm is one line
here: nothing in ``run``, ``api`` or ``cli`` names an algorithm."""
from pgzoo.algos import (a2c, a3c, acer, acktr, actor_critic, awr, cem, cma_es, d4pg, ddpg, dpg,
                         dppo, dqn, impala, maddpg, monte_carlo, npg, off_pac, openai_es, policy_evaluation,
                         policy_iteration, ppg, ppo, q_learning, reinforce, sac, sac_v1, sarsa,
                         soft_q_learning, svpg, td3, trpo, value_iteration, vpg)
from pgzoo.algos.base import Algorithm
from pgzoo.errors import PgzooError

ALGORITHMS: dict[str, Algorithm] = {m.ALGORITHM.name: m.ALGORITHM for m in (
    reinforce, actor_critic, a2c, vpg, ppo, npg, trpo, acktr, ppg, td3, ddpg, sac, sac_v1, d4pg,
    dpg, dqn, soft_q_learning, policy_evaluation, policy_iteration, value_iteration, monte_carlo,
    sarsa, q_learning, cem, cma_es, openai_es, awr, off_pac, acer, svpg, impala, a3c, dppo, maddpg)}

# Status shown by ``pgzoo list`` and the README for algorithms that are not implemented yet.
PLANNED: tuple[str, ...] = ()


def get(name: str) -> Algorithm:
    if name not in ALGORITHMS:
        planned = f" ({name} is planned, not implemented yet)" if name in PLANNED else ""
        raise PgzooError(f"unknown algorithm {name!r}{planned}; valid: {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]
