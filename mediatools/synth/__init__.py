"""Synthetic Agora recordings, deterministic from a seed, with a ``truth.json`` of where every
run of every user is: the fixtures of the tests, the benchmarks and ``mediatools demo``."""
from .generate import FAULT_KINDS, Fault, SynthSpec, UserSpec, plan, synthesize

__all__ = ["FAULT_KINDS", "Fault", "SynthSpec", "UserSpec", "plan", "synthesize"]
