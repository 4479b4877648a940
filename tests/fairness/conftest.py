from __future__ import annotations

import pytest

from service.fairness import FairnessConfig


@pytest.fixture
def config() -> FairnessConfig:
    return FairnessConfig(window_count=50, window_seconds=3600.0, min_group_count=5)
