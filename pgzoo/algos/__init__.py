"""One module per algorithm; ``ALGORITHMS`` maps the names ``pgzoo train`` accepts to them."""
from types import ModuleType

from pgzoo.algos import (a2c, acktr, actor_critic, d4pg, ddpg, dpg, npg, ppg, ppo, reinforce, sac,
                         sac_v1, td3, trpo, vpg)
from pgzoo.errors import PgzooError

ALGORITHMS: dict[str, ModuleType] = {"reinforce": reinforce, "actor_critic": actor_critic,
                                     "a2c": a2c, "vpg": vpg, "ppo": ppo,
                                     "npg": npg, "trpo": trpo, "acktr": acktr, "ppg": ppg, "td3": td3,
                                     "ddpg": ddpg, "sac": sac, "sac_v1": sac_v1,
                                     "d4pg": d4pg, "dpg": dpg}

# Status shown by ``pgzoo list`` and the README for algorithms that are not implemented yet.
PLANNED = ("a3c", "maddpg", "acer", "svpg", "impala", "value_iteration", "q_learning", "dqn",
           "double_dqn", "soft_q_learning", "awr", "cem", "cma_es", "nes")


def get(name: str) -> ModuleType:
    if name not in ALGORITHMS:
        planned = f" ({name} is planned, not implemented yet)" if name in PLANNED else ""
        raise PgzooError(f"unknown algorithm {name!r}{planned}; valid: {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]
