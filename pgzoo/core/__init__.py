"""Shared building blocks: networks, distributions, returns and advantages, rollouts, config."""
