from __future__ import annotations

import pytest

from models.cohort import CohortParams, CohortTable, generate_cohort
from models.pipeline import PipelineResult, run_pipeline


@pytest.fixture(scope="session")
def small_table() -> CohortTable:
    return generate_cohort(CohortParams(n=6000, seed=42))


@pytest.fixture(scope="session")
def small_result(small_table: CohortTable) -> PipelineResult:
    return run_pipeline(small_table, seed=42, n_boot=30)
