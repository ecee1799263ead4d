"""Deterministic synthetic version of the "value prop" data set (prints, taps, pays).

The real files are not available, so the pipeline is developed, tested and benchmarked against
this generator; it is development infrastructure, not part of the product package ``jobs``.

* :mod:`~infra.generator.model` — the synthetic population and its events (shape, skew, RNGs);
* :mod:`~infra.generator.render` — events as JSON lines, pays as CSV lines;
* :mod:`~infra.generator.bad_lines` — the kinds of deliberately bad lines and their injection;
* :mod:`~infra.generator.write` — files per layout (daily/single) and exact line counts;
* ``python -m infra.generator`` (:mod:`~infra.generator.__main__`) — the command line.

Same arguments, same bytes: a day's file does not depend on which other days are generated in
the same call (``start=2020-11-05, days=1`` writes the file a 30-day run writes for Nov 5).
"""

from __future__ import annotations

from infra.generator.bad_lines import BAD_LINE_KINDS
from infra.generator.model import SOURCES, VALUE_PROPS, users_for_scale
from infra.generator.render import PAYS_HEADER
from infra.generator.write import GeneratedFile, GenerateResult, generate

__all__ = [
    "BAD_LINE_KINDS",
    "PAYS_HEADER",
    "SOURCES",
    "VALUE_PROPS",
    "GenerateResult",
    "GeneratedFile",
    "generate",
    "users_for_scale",
]
