"""Baseline: the gold features with pandas (and numpy), Parquet out.

The best pandas version we could write, not a notebook's ``groupby().rolling()``: value props
become category codes shared by the three sources, every event gets one int64 key
(user, value prop, period), ``groupby(key).sum()`` pre-aggregates, and on the sorted keys the
window sums come from cumulative sums and ``searchsorted`` (the first key >= key - W). Amounts
stay integer cents; the Decimal column is built from the cents without a float detour.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from infra.bench.inputs import COLUMNS, silver_files, window_width
from jobs.settings import Settings

_VP_SHIFT = 2**15
_USER_SHIFT = 2**31


def _read(settings: Settings, source: str) -> pd.DataFrame:
    files = silver_files(settings, source)
    base = files[0].rsplit("/day=", 1)[0] if files else ""
    dataset = ds.dataset(
        files,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("day", pa.date32())]), flavor="hive"),
        partition_base_dir=base,
    )
    table = dataset.to_table(columns=COLUMNS[source])
    if source == "pays":  # integer cents: the unscaled low word of each decimal128(18, 2)
        total = table["total"].combine_chunks().cast(pa.decimal128(18, 2))
        words = np.frombuffer(total.buffers()[1], dtype=np.int64)[2 * total.offset :]
        table = table.drop_columns(["total"]).append_column(
            "cents", pa.array(words[0 : 2 * len(total) : 2].copy())
        )
    return table.to_pandas()


def _decimal_from_cents(cents: np.ndarray) -> pa.Array:
    """decimal128(18, 2) values equal to ``cents / 100``, exactly (cents >= 0)."""
    words = np.zeros((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    return pa.Array.from_buffers(pa.decimal128(18, 2), len(cents), [None, pa.py_buffer(words)])


def run(settings: Settings, out: str) -> int:
    prints, taps, pays = (_read(settings, s) for s in ("prints", "taps", "pays"))
    vps = pd.Index(pd.concat([prints["value_prop"], taps["value_prop"], pays["value_prop"]]).unique())
    calendar = settings.lookback_mode == "calendar"
    width = window_width(settings)

    def day_number(frame: pd.DataFrame) -> np.ndarray:
        return frame["day"].to_numpy().astype("datetime64[D]").astype(np.int64)

    def keys(frame: pd.DataFrame, by_day: bool = False) -> np.ndarray:
        days = day_number(frame)
        period = days if (by_day or not calendar) else (days + 3) // 7
        code = vps.get_indexer(frame["value_prop"]).astype(np.int64)
        return frame["user_id"].to_numpy(np.int64) * _USER_SHIFT + code * _VP_SHIFT + period

    events = pd.concat(
        [
            pd.DataFrame({"k": keys(prints), "views": 1, "clicks": 0, "payments": 0, "cents": 0}),
            pd.DataFrame({"k": keys(taps), "views": 0, "clicks": 1, "payments": 0, "cents": 0}),
            pd.DataFrame(
                {
                    "k": keys(pays),
                    "views": 0,
                    "clicks": 0,
                    "payments": 1,
                    "cents": pays["cents"].to_numpy(np.int64),
                }
            ),
        ],
        ignore_index=True,
    )
    per_key = events.groupby("k", sort=True).sum()
    k = per_key.index.to_numpy()
    # Periods count from 1970 (>= width, < 2^15), so k - width stays in the same (user, prop).
    start = np.searchsorted(k, k - width, side="left")
    priors = {}
    for col in ("views", "clicks", "payments", "cents"):
        before = np.concatenate([[0], np.cumsum(per_key[col].to_numpy())])  # sum of rows < i
        priors[col] = before[:-1] - before[start]
    features = pd.DataFrame(priors, index=per_key.index)

    target = prints.assign(k=keys(prints), dk=keys(prints, by_day=True))
    tapped = pd.Index(np.unique(keys(taps, by_day=True)))
    joined = target.join(features, on="k")
    days = pd.to_datetime(prints["day"])
    table = pa.table(
        {
            "week_start": pa.array((days - pd.to_timedelta(days.dt.weekday, unit="D")).dt.date),
            "day": pa.array(days.dt.date),
            "user_id": pa.array(joined["user_id"].to_numpy(np.int64)),
            "value_prop": pa.array(joined["value_prop"].astype(str).to_numpy()),
            "position": pa.array(joined["position"].to_numpy(np.int64)),
            "clicked": pa.array(joined["dk"].isin(tapped).to_numpy()),
            "prior_views": pa.array(joined["views"].to_numpy(np.int64)),
            "prior_clicks": pa.array(joined["clicks"].to_numpy(np.int64)),
            "prior_payments": pa.array(joined["payments"].to_numpy(np.int64)),
            "prior_amount": _decimal_from_cents(joined["cents"].to_numpy(np.int64)),
        }
    )
    pq.write_table(table, out)
    return table.num_rows
