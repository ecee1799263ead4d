"""The synthetic population and its events: who is active, what is printed, tapped and paid.

At ``scale=1`` the model mirrors the published shape of the real data: ~508k prints, ~51k taps,
~756k pays over 30 days, user ids 1..100000, 7 value props, positions 0..3.

* Users: every user gets a lognormal activity weight (heavy tail: the top 1% of users produce
  roughly 15% of the events). The weights depend only on ``(seed, scale)``, never on the day, so
  the same users are the heavy ones on every day.
* Prints are carousel impressions. A *session* is a (user, day) visit that shows ``k`` distinct
  value props (k in 1..4) at positions ``0..k-1``; the props are drawn by popularity without
  replacement (Gumbel top-k), so popular props tend to sit in front. A user may have several
  sessions on a day, so the same value prop can be printed twice on one day for one user.
* Taps are sampled (~10%) from the same day's prints, more likely at the front of the carousel and
  for some props, so every tap matches a print (user, day, value prop, position).
* Pays are independent of prints (pays without prints exist) but use the same user weights.
  Totals are cents drawn from a gamma distribution (mean about 50), clipped to 0.00..199.95.
* Volumes vary from day to day (about +-10%); ``scale`` grows users and volumes linearly.

Every (day, source) has its own RNG seeded from ``(day ordinal, source, purpose, seed)``, so a
day's data does not depend on which other days are generated in the same call ("trickle"
seeding writes byte-for-byte the days a full run writes).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from jobs.schemas import SOURCES as SOURCES  # the product's sources, re-exported
from jobs.settings import Settings

# The value props are the product's: those silver knows (QUALITY_KNOWN_VALUE_PROPS' default).
VALUE_PROPS: tuple[str, ...] = Settings.model_fields["quality_known_value_props"].default

# Published figures of the real data set (scale 1).
_REAL_DAYS = 30
_REAL_USERS = 100_000
_PRINTS_PER_DAY = 508_617 / _REAL_DAYS
_PAYS_PER_DAY = 756_483 / _REAL_DAYS
_TAP_RATE = 50_859 / 508_617

# Shape parameters of the model (see module docstring).
_USER_SIGMA = 1.3  # lognormal sigma of user activity weights
_DAY_SIGMA = 0.10  # relative day-to-day volume variation
_SESSION_SIZE_P = np.array([0.30, 0.30, 0.25, 0.15])  # P(k) for k = 1..4 props per session
_MEAN_SESSION_SIZE = float(np.dot(np.arange(1, 5), _SESSION_SIZE_P))
_PRINT_POPULARITY = np.array([0.22, 0.07, 0.16, 0.18, 0.10, 0.19, 0.08])
_PAY_POPULARITY = np.array([0.20, 0.05, 0.18, 0.21, 0.09, 0.20, 0.07])
_TAP_POSITION_REL = np.array([1.6, 1.1, 0.8, 0.6])
_TAP_PROP_REL = np.array([1.2, 0.7, 1.0, 1.1, 0.8, 1.0, 0.9])
if {len(VALUE_PROPS), len(_PRINT_POPULARITY), len(_PAY_POPULARITY), len(_TAP_PROP_REL)} != {len(VALUE_PROPS)}:
    raise RuntimeError("the generator's popularity tables need one entry per value prop of jobs.settings")
_TOTAL_GAMMA_SHAPE = 1.6
_TOTAL_GAMMA_SCALE = 31.55  # mean about 50.25 after clipping
_MAX_CENTS = 19_995

# Seed-sequence tags: entropy is (day ordinal, source, purpose, seed). Fixed-width tags first and
# non-zero purposes, because SeedSequence pads short entropy with zeros ([a, b] == [a, b, 0]).
_SOURCE_TAG = {"users": 9, "prints": 1, "taps": 2, "pays": 3}
PURPOSE_DATA = 1
PURPOSE_BAD = 2


def users_for_scale(scale: float) -> int:
    """Number of users (ids 1..n) at ``scale``: linear in scale, at least one."""
    return max(1, round(_REAL_USERS * scale))


def rng(day_ordinal: int, tag: str, purpose: int, seed: int) -> np.random.Generator:
    """The RNG of one (day, source, purpose): independent of every other day and source."""
    return np.random.default_rng([day_ordinal, _SOURCE_TAG[tag], purpose, seed])


def user_cdf(seed: int, n_users: int) -> np.ndarray:
    """Cumulative activity distribution of users; depends only on (seed, scale), not the day."""
    weights = rng(0, "users", PURPOSE_DATA, seed).lognormal(0.0, _USER_SIGMA, n_users)
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    return cdf


def _sample_users(gen: np.random.Generator, cdf: np.ndarray, n: int) -> np.ndarray:
    draws = gen.random(n)
    # Searching sorted draws walks the (up to 10M) cdf sequentially: ~10x faster than random
    # probes at scale 100, and the result is the same as searching the draws in their order.
    order = np.argsort(draws, kind="stable")
    idx = np.empty(n, dtype=np.int64)
    idx[order] = np.searchsorted(cdf, draws[order], side="right")
    return np.minimum(idx, len(cdf) - 1) + 1


def _day_factor(gen: np.random.Generator) -> float:
    return float(np.clip(1.0 + _DAY_SIGMA * gen.standard_normal(), 0.7, 1.3))


def day_prints(seed: int, day: date, scale: float, cdf: np.ndarray) -> pl.DataFrame:
    """Carousel sessions of one day, one row per print (user_id, position, vp code)."""
    gen = rng(day.toordinal(), "prints", PURPOSE_DATA, seed)
    lam = scale * _PRINTS_PER_DAY / _MEAN_SESSION_SIZE * _day_factor(gen)
    n_sessions = int(gen.poisson(lam))
    users = _sample_users(gen, cdf, n_sessions)
    sizes = gen.choice(np.arange(1, 5), size=n_sessions, p=_SESSION_SIZE_P)
    # Gumbel top-k: distinct props per session, ordered by popularity-weighted random keys.
    keys = np.log(_PRINT_POPULARITY) + gen.gumbel(size=(n_sessions, len(VALUE_PROPS)))
    order = np.argsort(-keys, axis=1)[:, :4]
    positions = np.broadcast_to(np.arange(4, dtype=np.int8), order.shape)
    shown = positions < sizes[:, None]
    return pl.DataFrame(
        {
            "user_id": np.repeat(users, sizes),
            "position": positions[shown],
            "vp": order[shown].astype(np.uint8),
        }
    )


def day_taps(seed: int, day: date, prints: pl.DataFrame) -> pl.DataFrame:
    """~10% of the day's prints, favouring front positions; so each tap matches a print."""
    gen = rng(day.toordinal(), "taps", PURPOSE_DATA, seed)
    if prints.height == 0:
        return prints.clear()
    rel = _TAP_POSITION_REL[prints["position"].to_numpy()] * _TAP_PROP_REL[prints["vp"].to_numpy()]
    p = np.minimum(_TAP_RATE * rel / rel.mean(), 1.0)
    return prints.filter(pl.Series(gen.random(prints.height) < p))


def day_pays(seed: int, day: date, scale: float, cdf: np.ndarray) -> pl.DataFrame:
    """Payments of one day, independent of prints but with the same user skew."""
    gen = rng(day.toordinal(), "pays", PURPOSE_DATA, seed)
    n = int(gen.poisson(scale * _PAYS_PER_DAY * _day_factor(gen)))
    users = _sample_users(gen, cdf, n)
    vps = gen.choice(len(VALUE_PROPS), size=n, p=_PAY_POPULARITY).astype(np.uint8)
    amounts = gen.gamma(_TOTAL_GAMMA_SHAPE, _TOTAL_GAMMA_SCALE, n)
    cents = np.clip(np.rint(amounts * 100), 0, _MAX_CENTS).astype(np.int32)
    return pl.DataFrame({"user_id": users, "cents": cents, "vp": vps})


def day_frames(seed: int, day: date, scale: float, cdf: np.ndarray) -> dict[str, pl.DataFrame]:
    """The good rows of one day per source (prints first: taps are drawn from them)."""
    prints = day_prints(seed, day, scale, cdf)
    return {
        "prints": prints,
        "taps": day_taps(seed, day, prints),
        "pays": day_pays(seed, day, scale, cdf),
    }
