"""Each stage's results are kept as Great Expectations validation results that GX itself loads."""

from __future__ import annotations

import json
from datetime import date, timedelta

from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema

from tests.conftest import LocalLake

ND = date(2020, 11, 2)  # a Monday


def test_every_stage_leaves_validation_results_that_gx_loads_with_the_counts_of_the_history(
    lake: LocalLake,
) -> None:
    lake.land_events("prints", [(ND, 1, "point", 0), (ND + timedelta(days=7), 1, "point", 1)], "a.json")
    lake.land_events("taps", [(ND, 1, "point", 0)], "a.json")
    # one unknown value prop: a warning, recorded and published
    lake.land_pays([(ND + timedelta(days=1), "10.50", 1, "point"), (ND, "1.00", 2, "mystery")], "a.csv")
    results = lake.run()
    assert not results["gold"].skipped and results["gold"].rows_out == 2
    history = lake.table("gold", "_quality_results")
    [run_id] = history["run_id"].unique()
    reports = lake.root / "gold" / "_quality_reports"
    schema = ExpectationSuiteValidationResultSchema()
    for stage in ("bronze", "silver", "gold"):
        documents = json.loads((reports / f"{run_id}.{stage}.gx.json").read_text())
        recorded = history.filter(layer=stage)
        assert sum(len(d["results"]) for d in documents) == recorded.height
        for document in documents:
            loaded = schema.load(document)  # GX's own schema: the record is valid GX
            assert loaded.suite_name == document["suite_name"]
            for result in loaded.results:
                config = result.expectation_config
                config.to_domain_obj()  # the expectation GX builds from the recorded type and arguments
                row = recorded.filter(expectation=config.meta["name"], suite=loaded.suite_name).row(
                    0, named=True
                )
                assert result.success == row["success"]
                assert result.result["unexpected_count"] == row["unexpected_count"]
                assert result.result["element_count"] == row["evaluated_rows"]
                assert result.result["observed_value"] == row["observed_value"]
                assert "partial_unexpected_list" not in result.result  # no sample rows beside gold
    silver = json.loads((reports / f"{run_id}.silver.gx.json").read_text())
    [pays] = [d for d in silver if d["suite_name"] == "silver.pays"]
    [known] = [
        r for r in pays["results"] if r["expectation_config"]["type"] == "expect_column_values_to_be_in_set"
    ]
    assert not known["success"] and known["result"]["unexpected_count"] == 1
    assert pays["success"]  # a warning does not fail the suite it belongs to
