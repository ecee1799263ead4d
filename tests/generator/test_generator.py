"""Tests of the synthetic raw data generator: volumes, contract, determinism, bad lines, skew."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from infra.generator import (
    BAD_LINE_KINDS,
    PAYS_HEADER,
    SOURCES,
    VALUE_PROPS,
    GenerateResult,
    generate,
    users_for_scale,
)

REAL = {"prints": 508_617, "taps": 50_859, "pays": 756_483}
SCALE = 0.02
START = date(2020, 11, 1)
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# ------------------------------------------------------------------------------------------
# The raw contract, written independently of the generator: None for a good line, else a
# reason that names what is wrong (one reason per bad-line kind).
# ------------------------------------------------------------------------------------------


def _date_problem(value: object, prefix: str) -> str | None:
    if not isinstance(value, str) or not ISO_DATE.match(value):
        return f"{prefix}_format"
    try:
        date.fromisoformat(value)
    except ValueError:
        return f"{prefix}_impossible"
    return None


def event_problem(line: str) -> str | None:
    if line == "":
        return "empty_line"
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        return "invalid_json"
    if not isinstance(obj, dict):
        return "not_object"
    if "user_id" not in obj:
        return "missing_user_id"
    if not isinstance(obj.get("event_data"), dict):
        return "missing_event_data"
    event = obj["event_data"]
    if "value_prop" not in event:
        return "missing_value_prop"
    if set(obj) != {"day", "event_data", "user_id"} or set(event) != {"position", "value_prop"}:
        return "unexpected_keys"
    if problem := _date_problem(obj["day"], "day"):
        return problem
    user = obj["user_id"]
    if isinstance(user, str):
        return "user_id_string"
    if isinstance(user, float):
        return "user_id_float"
    if type(user) is not int:
        return "user_id_type"
    if user < 1:
        return "user_id_non_positive"
    if event["value_prop"] == "":
        return "value_prop_empty"
    if event["value_prop"] not in VALUE_PROPS:
        return "value_prop_unknown"
    position = event["position"]
    if type(position) is not int:
        return "position_not_int"
    if position < 0:
        return "position_negative"
    if position > 3:
        return "position_too_large"
    return None


def pay_problem(line: str) -> str | None:
    if line == "":
        return "empty_line"
    fields = line.split(",")
    if len(fields) != 4:
        return "field_count"
    pay_date, total, user, value_prop = fields
    if problem := _date_problem(pay_date, "pay_date"):
        return problem
    if re.fullmatch(r"-\d+\.\d+", total):
        return "total_negative"
    if re.fullmatch(r"\d+\.\d{3,}", total):
        return "total_decimals"
    if not re.fullmatch(r"\d+\.\d{2}", total):
        return "total_not_numeric"
    if float(total) > 199.95:
        return "total_too_large"
    if re.fullmatch(r"-?\d+", user) and int(user) < 1:
        return "user_id_non_positive"
    if not re.fullmatch(r"[1-9]\d*", user):
        return "user_id_not_int"
    if value_prop == "":
        return "value_prop_empty"
    if value_prop not in VALUE_PROPS:
        return "value_prop_unknown"
    return None


def problem(source: str, line: str) -> str | None:
    return pay_problem(line) if source == "pays" else event_problem(line)


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


def data_lines(path: Path, source: str) -> list[str]:
    """The data lines of a file (header dropped), checking every line ends with a newline."""
    text = path.read_text()
    assert text.endswith("\n") or text == ""
    lines = text[:-1].split("\n") if text else []
    if source == "pays":
        assert lines[0] == PAYS_HEADER
        lines = lines[1:]
    return lines


def lines_by_source(result: GenerateResult) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {s: [] for s in SOURCES}
    for f in result.files:
        out[f.source].extend(data_lines(f.path, f.source))
    return out


def events_frame(lines: list[str]) -> pl.DataFrame:
    rows = [json.loads(line) for line in lines if event_problem(line) is None]
    return pl.DataFrame(
        {
            "day": [r["day"] for r in rows],
            "user_id": [r["user_id"] for r in rows],
            "value_prop": [r["event_data"]["value_prop"] for r in rows],
            "position": [r["event_data"]["position"] for r in rows],
        },
        schema={
            "day": pl.String,
            "user_id": pl.Int64,
            "value_prop": pl.String,
            "position": pl.Int64,
        },
    )


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> GenerateResult:
    return generate(out_dir=tmp_path_factory.mktemp("clean"), scale=SCALE)


@pytest.fixture(scope="module")
def clean_lines(clean: GenerateResult) -> dict[str, list[str]]:
    return lines_by_source(clean)


@pytest.fixture(scope="module")
def with_bad(tmp_path_factory: pytest.TempPathFactory) -> GenerateResult:
    return generate(out_dir=tmp_path_factory.mktemp("bad"), scale=SCALE, bad_lines=30)


# ------------------------------------------------------------------------------------------
# Volumes and contract
# ------------------------------------------------------------------------------------------


def test_scale_002_volumes_are_within_15_percent_of_scaled_real_data(
    clean: GenerateResult, clean_lines: dict[str, list[str]]
) -> None:
    for source in SOURCES:
        expected = SCALE * REAL[source]
        assert abs(clean.total(source) - expected) <= 0.15 * expected, source
        assert clean.total(source) == len(clean_lines[source])
        assert clean.bad(source) == 0


def test_the_generated_value_props_are_the_ones_silver_knows() -> None:
    """One list: the generator takes the product's (``QUALITY_KNOWN_VALUE_PROPS``' default)."""
    from jobs.settings import Settings

    assert Settings(_env_file=None).quality_known_value_props == VALUE_PROPS  # type: ignore[call-arg]


def test_scale_002_values_stay_in_the_real_domains(clean_lines: dict[str, list[str]]) -> None:
    n_users = users_for_scale(SCALE)
    assert n_users == 2000
    days = {(START + timedelta(days=i)).isoformat() for i in range(30)}
    for source in ("prints", "taps"):
        frame = events_frame(clean_lines[source])
        assert frame.height == len(clean_lines[source])  # every line is valid
        assert frame["user_id"].min() >= 1 and frame["user_id"].max() <= n_users
        assert set(frame["value_prop"]) == set(VALUE_PROPS)
        assert set(frame["position"]) == {0, 1, 2, 3}
        assert set(frame["day"]) == days
    pays = [line.split(",") for line in clean_lines["pays"]]
    assert all(pay_problem(line) is None for line in clean_lines["pays"])
    assert {p[0] for p in pays} == days
    assert {p[3] for p in pays} == set(VALUE_PROPS)
    totals = [p[1] for p in pays]
    assert all(re.fullmatch(r"\d{1,3}\.\d\d", t) for t in totals)
    values = [float(t) for t in totals]
    assert min(values) >= 0 and max(values) <= 199.95
    assert 45 <= sum(values) / len(values) <= 55
    assert all(1 <= int(p[2]) <= n_users for p in pays)


def test_good_event_lines_use_canonical_key_order_and_spacing(
    clean_lines: dict[str, list[str]],
) -> None:
    for source in ("prints", "taps"):
        for line in clean_lines[source]:
            assert json.dumps(json.loads(line)) == line
    first = clean_lines["prints"][0]
    assert re.fullmatch(
        r'\{"day": "\d{4}-\d\d-\d\d", "event_data": \{"position": \d, '
        r'"value_prop": "[a-z_]+"\}, "user_id": \d+\}',
        first,
    )


def test_every_tap_matches_a_print_on_same_user_day_value_prop_position(
    clean_lines: dict[str, list[str]],
) -> None:
    keys = ["day", "user_id", "value_prop", "position"]
    prints = events_frame(clean_lines["prints"]).unique(keys)
    taps = events_frame(clean_lines["taps"])
    assert taps.height > 0
    assert taps.join(prints, on=keys, how="anti").height == 0
    ratio = taps.height / len(clean_lines["prints"])
    assert 0.08 <= ratio <= 0.12


def test_prints_model_sessions_repeats_and_pays_without_prints(
    clean_lines: dict[str, list[str]],
) -> None:
    prints = events_frame(clean_lines["prints"])
    # A user can see the same value prop twice on one day (several sessions).
    repeats = prints.group_by(["day", "user_id", "value_prop"]).len().filter(pl.col("len") > 1)
    assert repeats.height > 0
    # Unequal popularity of value props.
    counts = prints["value_prop"].value_counts()["count"]
    assert counts.max() > 1.5 * counts.min()
    payers = {int(line.split(",")[2]) for line in clean_lines["pays"]}
    assert payers - set(prints["user_id"])


def test_user_activity_is_skewed_top_1_percent_make_over_5_percent_of_prints(
    clean_lines: dict[str, list[str]],
) -> None:
    per_user = Counter(events_frame(clean_lines["prints"])["user_id"].to_list())
    top = sorted(per_user.values(), reverse=True)[: users_for_scale(SCALE) // 100]
    assert sum(top) / sum(per_user.values()) > 0.05


# ------------------------------------------------------------------------------------------
# Determinism and layouts
# ------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    args = {"scale": 0.01, "days": 3, "bad_lines": 5}
    generate(out_dir=tmp_path / "a", seed=7, **args)
    generate(out_dir=tmp_path / "b", seed=7, **args)
    generate(out_dir=tmp_path / "c", seed=8, **args)
    a, b, c = (tree_bytes(tmp_path / name) for name in "abc")
    assert len(a) == 9
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a)


def test_one_day_run_writes_exactly_that_day_of_the_full_run(clean: GenerateResult, tmp_path: Path) -> None:
    day = date(2020, 11, 5)
    single = generate(out_dir=tmp_path, scale=SCALE, start=day, days=1)
    assert len(single.files) == 3
    full = {f.source: f for f in clean.files if f.day == day}
    for f in single.files:
        assert f.day == day
        assert f.path.read_bytes() == full[f.source].path.read_bytes()
        assert f.lines == full[f.source].lines


def test_daily_and_single_layouts_hold_the_same_lines(tmp_path: Path) -> None:
    args = {"scale": 0.01, "days": 5, "bad_lines": 12}
    daily = generate(out_dir=tmp_path / "daily", **args)
    single = generate(out_dir=tmp_path / "single", layout="single", **args)
    assert [f.path.name for f in single.files] == ["prints.json", "taps.json", "pays.csv"]
    assert all(f.day is None for f in single.files)
    daily_lines, single_lines = lines_by_source(daily), lines_by_source(single)
    for source in SOURCES:
        assert Counter(daily_lines[source]) == Counter(single_lines[source])
        assert single.total(source) == daily.total(source) == len(single_lines[source])
        assert single.bad(source) == daily.bad(source) == 12
    assert (tmp_path / "single" / "pays" / "pays.csv").read_text().count(PAYS_HEADER) == 1


def test_layout_paths_are_absolute_and_leave_no_temporary_files(
    clean: GenerateResult,
) -> None:
    assert len(clean.files) == 90
    for f in clean.files:
        assert f.path.is_absolute() and f.path.is_file()
        ext = "csv" if f.source == "pays" else "json"
        assert f.path.parts[-3:] == (f.source, f"day={f.day.isoformat()}", f"part-0.{ext}")
    root = clean.files[0].path.parents[2]
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------------------
# Bad lines
# ------------------------------------------------------------------------------------------


def test_bad_line_kinds_cover_the_contract_and_every_example_is_invalid() -> None:
    assert set(BAD_LINE_KINDS) == set(SOURCES)
    assert BAD_LINE_KINDS["prints"] == BAD_LINE_KINDS["taps"]
    assert len(BAD_LINE_KINDS["prints"]) >= 13 and len(BAD_LINE_KINDS["pays"]) >= 8
    for source, kinds in BAD_LINE_KINDS.items():
        reasons = {}
        for kind, examples in kinds.items():
            found = {problem(source, example) for example in examples}
            assert None not in found, (source, kind)
            assert len(found) == 1, (source, kind, found)  # variants of a kind fail alike
            reasons[kind] = found.pop()
        # The test's contract tells every kind apart.
        assert len(set(reasons.values())) == len(kinds), reasons


def test_bad_lines_counts_match_and_only_bad_lines_break_the_contract(
    with_bad: GenerateResult,
) -> None:
    for source in SOURCES:
        assert with_bad.bad(source) == 30
        for f in with_bad.files:
            if f.source != source:
                continue
            lines = data_lines(f.path, source)
            assert len(lines) == f.lines
            assert f.bad_lines == 1  # 30 bad lines spread over 30 daily files
            assert sum(problem(source, line) is not None for line in lines) == f.bad_lines


def test_bad_lines_are_inserted_without_changing_the_good_lines(
    clean: GenerateResult, with_bad: GenerateResult
) -> None:
    bad_files = {(f.source, f.day): f for f in with_bad.files}
    for f in clean.files:
        other = bad_files[(f.source, f.day)]
        good = [x for x in data_lines(other.path, f.source) if problem(f.source, x) is None]
        assert good == data_lines(f.path, f.source)
        assert other.lines == f.lines + other.bad_lines


def test_taps_still_match_prints_when_files_hold_bad_lines(with_bad: GenerateResult) -> None:
    lines = lines_by_source(with_bad)
    keys = ["day", "user_id", "value_prop", "position"]
    taps = events_frame(lines["taps"])
    assert taps.height == with_bad.total("taps") - with_bad.bad("taps")
    assert taps.join(events_frame(lines["prints"]), on=keys, how="anti").height == 0


def test_a_handful_of_bad_lines_cycles_through_all_kinds(tmp_path: Path) -> None:
    n_event_kinds = len(BAD_LINE_KINDS["prints"])
    first_five = generate(out_dir=tmp_path / "five", scale=0.01, days=5, bad_lines=5)
    lines = lines_by_source(first_five)
    for source in SOURCES:
        reasons = [r for line in lines[source] if (r := problem(source, line))]
        assert len(set(reasons)) == 5, (source, reasons)
    every = generate(out_dir=tmp_path / "all", scale=0.01, days=4, bad_lines=2 * n_event_kinds)
    lines = lines_by_source(every)
    for source in SOURCES:
        expected = {problem(source, ex[0]) for ex in BAD_LINE_KINDS[source].values()}
        found = {problem(source, line) for line in lines[source]} - {None}
        assert found == expected, source


def test_bad_fraction_makes_that_share_of_each_file_bad(tmp_path: Path) -> None:
    result = generate(out_dir=tmp_path, scale=0.02, days=3, bad_fraction=0.05)
    for f in result.files:
        lines = data_lines(f.path, f.source)
        n_bad = sum(problem(f.source, line) is not None for line in lines)
        assert n_bad == f.bad_lines and len(lines) == f.lines
        assert f.bad_lines == pytest.approx(0.05 * f.lines, abs=1)


def test_bad_lines_and_fraction_add_up(tmp_path: Path) -> None:
    result = generate(out_dir=tmp_path, scale=0.01, days=2, bad_lines=3, bad_fraction=0.01)
    for f in result.files:
        share = round(0.01 * (f.lines - f.bad_lines) / 0.99)
        assert f.bad_lines == share + (2 if f.day == START else 1)


# ------------------------------------------------------------------------------------------
# Options and edge cases
# ------------------------------------------------------------------------------------------


def test_tiny_fractional_scale_has_one_user_and_still_writes_valid_files(
    tmp_path: Path,
) -> None:
    result = generate(out_dir=tmp_path, scale=1e-6, days=3, bad_lines=4)
    assert users_for_scale(1e-6) == 1
    lines = lines_by_source(result)
    for source in SOURCES:
        assert len(lines[source]) == result.total(source)
        assert result.bad(source) == 4
    good = events_frame(lines["prints"])
    assert set(good["user_id"]) <= {1}
    assert {int(x.split(",")[2]) for x in lines["pays"] if pay_problem(x) is None} <= {1}


def test_skip_existing_leaves_files_alone_and_reports_the_same_counts(tmp_path: Path) -> None:
    first = generate(out_dir=tmp_path, scale=0.01, days=2, bad_lines=2)
    victim = first.files[0].path
    victim.write_text("kept\n")
    again = generate(out_dir=tmp_path, scale=0.01, days=2, bad_lines=2, skip_existing=True)
    assert victim.read_text() == "kept\n"
    assert again == first
    generate(out_dir=tmp_path, scale=0.01, days=2, bad_lines=2)
    assert victim.read_text() != "kept\n"


def test_skip_existing_in_single_layout_keeps_the_file(tmp_path: Path) -> None:
    first = generate(out_dir=tmp_path, scale=0.01, days=2, layout="single")
    pays = tmp_path / "pays" / "pays.csv"
    pays.write_text("kept\n")
    again = generate(out_dir=tmp_path, scale=0.01, days=2, layout="single", skip_existing=True)
    assert pays.read_text() == "kept\n"
    assert again == first


def test_result_totals_sum_the_files_and_reject_unknown_sources(
    clean: GenerateResult,
) -> None:
    assert clean.total("taps") == sum(f.lines for f in clean.files if f.source == "taps")
    with pytest.raises(ValueError):
        clean.total("clicks")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scale": 0},
        {"scale": -1.0},
        {"days": 0},
        {"seed": -1},
        {"layout": "weekly"},
        {"bad_fraction": 1.0},
        {"bad_fraction": -0.1},
        {"bad_lines": -1},
    ],
)
def test_invalid_arguments_are_rejected(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        generate(out_dir=tmp_path, **kwargs)  # type: ignore[arg-type]
