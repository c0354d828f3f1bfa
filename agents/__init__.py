"""Agents: the protocol the run loop knows, a registry, and the agents themselves."""
