"""Counter-based randomness for the core: a draw depends only on (seed, seq, stream), never on call order."""
from __future__ import annotations

_MASK = (1 << 64) - 1


def splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def draw(seed: int, seq: int, stream: int = 0) -> int:
    """A uniformly distributed 64-bit integer for this (seed, seq, stream)."""
    return splitmix64(splitmix64(splitmix64(seed & _MASK) ^ (seq & _MASK)) ^ (stream & _MASK))


def uniform_int(seed: int, seq: int, stream: int, n: int) -> int:
    """An integer in [0, n) (n >= 1), with negligible bias for n far below 2**64."""
    if n < 1:
        raise ValueError("n must be >= 1")
    return draw(seed, seq, stream) % n
