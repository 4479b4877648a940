"""The engine's small parts: pseudonym key, bounded labels."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import SecretStr

from fhir_adapters.features import AgeBand, AuditAttributes, ClinicalSex, Ethnicity, Race
from service.keys import KEY_BYTES, PseudonymKeyError, load_or_create_key_file, load_pseudonym_key
from service.labels import facility_label, group_labels
from service.settings import Settings


def test_key_file_is_created_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "pseudonym.key"
    key = load_or_create_key_file(path)
    assert len(key) == KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key_file(path) == key


def test_the_data_dir_is_private_and_racing_starts_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "data" / "pseudonym.key"
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: load_or_create_key_file(path), range(32)))
    assert len(keys) == 1
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["pseudonym.key"]


def test_configured_key_wins_over_the_file(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(pseudonym_key=SecretStr("configured-secret"))
    assert load_pseudonym_key(settings) == b"configured-secret"
    assert not (settings.data_dir / "pseudonym.key").exists()


def test_truncated_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pseudonym.key"
    path.write_bytes(b"short")
    with pytest.raises(PseudonymKeyError):
        load_or_create_key_file(path)


def test_facility_label_is_bounded_by_the_allow_list() -> None:
    allow = ("Organization/a",)
    assert facility_label("Organization/a", allow) == "Organization/a"
    assert facility_label("Organization/zzz", allow) == "other"
    assert facility_label(None, allow) == "unknown"


def test_group_labels_come_from_the_audit_enums() -> None:
    audit = AuditAttributes(
        race=Race.ASIAN,
        ethnicity=Ethnicity.HISPANIC_OR_LATINO,
        sex=ClinicalSex.MALE,
        age_band=AgeBand.AGE_90_PLUS,
        facility="Organization/x",
        patient_pseudonym="p",
        encounter_pseudonym=None,
    )
    labels = group_labels(audit, ())
    assert labels.by_attribute() == (
        ("race", "asian"),
        ("ethnicity", "hispanic_or_latino"),
        ("sex", "male"),
        ("race_sex", "asian/male"),
        ("age_band", "90+"),
    )
    assert labels.facility == "other"


def test_a_key_file_others_can_read_is_refused_not_used(tmp_path: Path) -> None:
    """Was used with a warning: a readable key makes every pseudonym reversible."""
    path = tmp_path / "data" / "pseudonym.key"
    load_or_create_key_file(path)
    path.chmod(0o644)
    with pytest.raises(PseudonymKeyError, match="mode 0600"):
        load_or_create_key_file(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_key_file_another_user_planted_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "pseudonym.key"
    path.parent.mkdir(mode=0o700)
    path.write_bytes(bytes(KEY_BYTES))  # all zeros: a key the planter knows
    path.chmod(0o600)
    os.chown(path, 65534, 65534)
    with pytest.raises(PseudonymKeyError, match="belong to the service's user"):
        load_or_create_key_file(path)
