"""Counter-based random numbers as Polars expressions (SplitMix64).

    >>> import polars as pl
    >>> from investigator.demo.samples._rng import draw
    >>> pl.select(x=draw(pl.int_range(3, dtype=pl.UInt64), seed=7, stream=1) % 10).to_series().len()
    3

Why not ``pl.Expr.hash`` or ``DataFrame.sample``: Polars documents that its
hash is not stable across versions, and the committed sample set must be
byte-identical when regenerated. SplitMix64 is a fixed, public algorithm
(Steele, Lea, Flood 2014); Polars' unsigned multiplication and addition wrap
modulo 2**64, which is exactly what it needs. No numpy required.
"""

from __future__ import annotations

import polars as pl

_GAMMA = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_MASK = (1 << 64) - 1


def _u(value: int) -> pl.Expr:
    return pl.lit(value & _MASK, dtype=pl.UInt64)


def _shr(expr: pl.Expr, bits: int) -> pl.Expr:
    # Logical right shift of an unsigned value is an integer division by 2**bits.
    return expr // _u(1 << bits)


def mix(z: pl.Expr) -> pl.Expr:
    """The SplitMix64 finalizer of a UInt64 expression."""
    z = (z ^ _shr(z, 30)) * _u(_M1)
    z = (z ^ _shr(z, 27)) * _u(_M2)
    return z ^ _shr(z, 31)


def draw(counter: pl.Expr, *, seed: int, stream: int) -> pl.Expr:
    """A 64-bit pseudo-random UInt64 for each ``counter`` value, per ``seed`` and ``stream``.

    Different streams give independent draws for the same row (one for the
    day, one for the hour, one for the text ...).
    """
    base = mix(_u(seed * 1_000_003 + stream * 7919 + 1))
    return mix(counter.cast(pl.UInt64) * _u(_GAMMA) + base)


def below(counter: pl.Expr, bound: pl.Expr | int, *, seed: int, stream: int) -> pl.Expr:
    """A pseudo-random integer in ``[0, bound)`` (Int64). ``bound`` may vary by row."""
    bound_expr = bound if isinstance(bound, pl.Expr) else pl.lit(bound)
    return (draw(counter, seed=seed, stream=stream) % bound_expr.cast(pl.UInt64)).cast(pl.Int64)


def uniform(counter: pl.Expr, *, seed: int, stream: int) -> pl.Expr:
    """A pseudo-random float in ``[0, 1)`` with 53 bits of precision."""
    return _shr(draw(counter, seed=seed, stream=stream), 11).cast(pl.Float64) / float(1 << 53)
