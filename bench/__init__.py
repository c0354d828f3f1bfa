"""Benchmark and ablation harness for sample-efficient Atari RL."""

__version__ = "0.1.0"
