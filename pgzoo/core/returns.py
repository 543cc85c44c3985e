"""Returns and advantages, time-major (axis 0 is time).

``dones[t]`` is 1 where the episode ended after step t (terminated or truncated). Truncation is
handled by the caller: it adds ``gamma * V(final_obs)`` to the reward of a truncated step, so the
episode's value is bootstrapped at a time limit and cut at a true termination.

    discounted return   G_t = r_t + gamma (1 - d_t) G_{t+1},            G_T = V(s_T)
    TD error            delta_t = r_t + gamma (1 - d_t) V(s_{t+1}) - V(s_t)
    GAE(gamma, lambda)  A_t = delta_t + gamma lambda (1 - d_t) A_{t+1},  A_T = 0
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def discounted_returns(rewards, dones, last_value, gamma: float):
    """Reward-to-go G_t, bootstrapped from ``last_value`` after the final step."""

    def backward(g_next, x):
        reward, done = x
        g = reward + gamma * (1.0 - done) * g_next
        return g, g

    _, returns = jax.lax.scan(backward, last_value, (rewards, dones.astype(rewards.dtype)),
                              reverse=True)
    return returns


def gae(rewards, values, dones, last_value, gamma: float, lam: float):
    """Generalised advantage estimates A_t and the value targets A_t + V(s_t)."""
    dones = dones.astype(rewards.dtype)
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    deltas = rewards + gamma * (1.0 - dones) * next_values - values

    def backward(a_next, x):
        delta, done = x
        a = delta + gamma * lam * (1.0 - done) * a_next
        return a, a

    _, advantages = jax.lax.scan(backward, jnp.zeros_like(last_value), (deltas, dones),
                                 reverse=True)
    return advantages, advantages + values


def bootstrap_truncated(rewards, truncated, final_values, gamma: float):
    """r_t + gamma V(s_final) where the episode was cut by a time limit, so that returns computed
    with ``dones`` = terminated | truncated bootstrap at truncation and stop at termination."""
    return rewards + gamma * truncated.astype(rewards.dtype) * final_values


def complete_mask(dones):
    """1 where the return from step t is complete within the rollout: an episode end happens at
    step t or later (time-major). Monte-Carlo methods learn only from these steps."""

    def backward(seen_end, done):
        seen_end = jnp.logical_or(done, seen_end)
        return seen_end, seen_end

    _, mask = jax.lax.scan(backward, jnp.zeros(dones.shape[1:], bool), dones, reverse=True)
    return mask


def retrace(rewards, dones, q_taken, values, traces, last_value, gamma: float):
    r"""Retrace targets (Munos et al. 2016) of the taken actions, time-major:

        G_t = r_t + \gamma (1 - d_t) [ V(s_{t+1}) + c_{t+1} (G_{t+1} - Q(s_{t+1}, a_{t+1})) ],

    G_{T-1} = r_{T-1} + \gamma (1 - d_{T-1}) ``last_value``. ``q_taken`` is Q(s_t, a_t),
    ``values`` V(s_t) = \sum_a \pi(a|s_t) Q(s_t, a) and ``traces`` c_t = \lambda min(1, \rho_t)
    with \rho_t = \pi(a_t|s_t) / \mu(a_t|s_t) (importance sampling, tree backup and Q(\lambda)
    are other choices of c). Unrolled, G_t = Q(s_t, a_t) + \sum_{s>=t} \gamma^{s-t}
    (\prod_{i=t+1}^{s} c_i) \delta_s with \delta_s = r_s + \gamma V(s_{s+1}) - Q(s_s, a_s). ACER
    (Wang et al. 2017) writes the same recursion with c_t = min(1, \rho_t)."""
    dones = dones.astype(rewards.dtype)

    def backward(carry, x):
        g_next, v_next, q_next, c_next = carry
        reward, done, q, v, c = x
        g = reward + gamma * (1.0 - done) * (v_next + c_next * (g_next - q_next))
        return (g, v, q, c), g

    zeros = jnp.zeros_like(last_value)
    _, targets = jax.lax.scan(backward, (last_value, last_value, zeros, zeros),
                              (rewards, dones, q_taken, values, traces), reverse=True)
    return targets


def vtrace(rewards, dones, values, last_value, log_rhos, gamma: float, rho_bar: float = 1.0,
           c_bar: float = 1.0, lam: float = 1.0):
    r"""V-trace targets and policy-gradient advantages (Espeholt et al. 2018, eqs. 1 and 4),
    time-major, of a trajectory from a behaviour policy \mu evaluated for a target policy \pi:

        \rho_t = min(\bar\rho, \pi(a_t|x_t) / \mu(a_t|x_t)),   c_t = \lambda min(\bar c, \pi / \mu)
        \delta_t V = \rho_t (r_t + \gamma (1 - d_t) V(x_{t+1}) - V(x_t))
        v_t = V(x_t) + \delta_t V + \gamma (1 - d_t) c_t (v_{t+1} - V(x_{t+1})),
        v_T = V(x_T) = ``last_value``
        A_t = \rho_t (r_t + \gamma (1 - d_t) v_{t+1} - V(x_t))        (the actor's advantage)

    (with \lambda < 1, A_t bootstraps from \lambda v_{t+1} + (1 - \lambda) V(x_{t+1}), as rlax does).

    ``log_rhos`` is log \pi(a_t|x_t) - log \mu(a_t|x_t). ``dones[t]`` cuts the recursion where an
    episode ended inside the trajectory, so nothing is bootstrapped across an episode's end; at a
    truncation the caller adds \gamma V(final observation) to the reward
    (``bootstrap_truncated``). Returns (v_t, A_t), both without gradient."""
    dones = dones.astype(rewards.dtype)
    rhos = jnp.exp(log_rhos)
    clipped_rhos = jnp.minimum(rho_bar, rhos)
    cs = lam * jnp.minimum(c_bar, rhos)
    discounts = gamma * (1.0 - dones)
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    deltas = clipped_rhos * (rewards + discounts * next_values - values)

    def backward(acc, x):  # acc = v_{t+1} - V(x_{t+1})
        delta, discount, c = x
        acc = delta + discount * c * acc
        return acc, acc

    _, vs_minus_v = jax.lax.scan(backward, jnp.zeros_like(last_value), (deltas, discounts, cs),
                                 reverse=True)
    vs = vs_minus_v + values
    # with lambda < 1 the bootstrap mixes v_{t+1} and V(x_{t+1}), as rlax does
    next_vs = jnp.concatenate([lam * vs[1:] + (1 - lam) * values[1:], last_value[None]], axis=0)
    advantages = clipped_rhos * (rewards + discounts * next_vs - values)
    return jax.lax.stop_gradient(vs), jax.lax.stop_gradient(advantages)
