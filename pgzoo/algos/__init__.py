"""One module per algorithm; ``ALGORITHMS`` maps the names ``pgzoo train`` accepts to them."""
from types import ModuleType

from pgzoo.algos import a2c, acktr, actor_critic, npg, ppg, ppo, reinforce, td3, trpo, vpg
from pgzoo.errors import PgzooError

ALGORITHMS: dict[str, ModuleType] = {"reinforce": reinforce, "actor_critic": actor_critic,
                                     "a2c": a2c, "vpg": vpg, "ppo": ppo,
                                     "npg": npg, "trpo": trpo, "acktr": acktr, "ppg": ppg, "td3": td3}

# Status shown by ``pgzoo list`` and the README for algorithms that are not implemented yet.
PLANNED = ("dpg", "ddpg", "sac", "d4pg")


def get(name: str) -> ModuleType:
    if name not in ALGORITHMS:
        planned = f" ({name} is planned, not implemented yet)" if name in PLANNED else ""
        raise PgzooError(f"unknown algorithm {name!r}{planned}; valid: {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]
