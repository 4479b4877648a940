"""Versioned model registry on the file system.

Layout::

    <root>/<name>/<version>/model.onnx      the artifact the service loads
    <root>/<name>/<version>/manifest.json   sha256, schema, thresholds, metrics, lineage
    <root>/<name>/<version>/model_card.md   ONC HTI-1 source attributes
    <root>/<name>/ACTIVE                    the active version (written atomically)
    <root>/<name>/HISTORY                   previously active versions, oldest first
    <root>/<name>/.lock                     held (flock) by every change

Changes (register, promote, rollback) hold an exclusive ``flock`` on ``.lock``, so two
processes cannot interleave their reads and writes of ACTIVE and HISTORY. The two files are
replaced one at a time, in an order that makes a crash between them harmless: a promotion
appends the old version to HISTORY before ACTIVE names the new one, a rollback names the
previous version in ACTIVE before HISTORY drops it. Either crash leaves HISTORY ending in
the ACTIVE version, which ``history`` reads as not there (the ACTIVE version is never the
last entry of HISTORY), so the registry reads as if the change had not started or had finished.

``load`` trusts nothing on disk: it re-hashes the ONNX file, checks the feature names
against ``FEATURE_SCHEMA`` and parses the graph, raising a ``RegistryError`` subclass with a
machine-readable ``reason`` on any problem. Malformed content anywhere (a manifest that is not
UTF-8 JSON of the right shape, an unreadable file, ACTIVE or HISTORY that are not version
names) is a ``RegistryError`` too, never an OSError or a decoding error. Version names are
checked (``v<number>``, bounded) before any path is built from them. ``promote`` and
``rollback`` also run the graph (``models.verify``): ACTIVE never names a version whose output
is not a probability.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import onnx

from .errors import (
    ChecksumMismatch,
    EvaluationMismatch,
    GateFailed,
    ManifestInvalid,
    ManifestMissing,
    ModelCorrupt,
    ModelMissing,
    NothingToRollBack,
    RegistryStateInvalid,
    SchemaMismatch,
    VersionExists,
    VersionNotFound,
)
from .export import INPUT_NAME, OUTPUT_NAME, onnx_metadata
from .gates import PromotionGates, PromotionReport, apply_gates
from .schema import FEATURE_NAMES, SCHEMA_VERSION, ProtectedFeatureError, assert_schema_allowed
from .thresholds import Thresholds
from .verify import check_runs

DEFAULT_MODEL_NAME = "mace-30d"
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
CARD_FILE = "model_card.md"
ACTIVE_FILE = "ACTIVE"
HISTORY_FILE = "HISTORY"
LOCK_FILE = ".lock"
# fullmatch only ("$" also matches before a trailing newline); the bound keeps a caller's
# string from reaching the file system as an over-long path (ENAMETOOLONG).
_VERSION_RE = re.compile(r"v(?:0|[1-9][0-9]{0,8})")
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def is_version(text: object) -> bool:
    """Whether ``text`` is a version name (``v<number>``, no leading zero, at most 9 digits)."""
    return isinstance(text, str) and _VERSION_RE.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class Manifest:
    sha256: str
    schema_version: str
    feature_names: tuple[str, ...]
    thresholds: Thresholds
    metrics: dict[str, float] = field(default_factory=dict)
    parent_version: str | None = None
    created_at: str = ""
    training_fingerprint: str = ""
    model_kind: str = ""

    def to_json(self) -> str:
        data = asdict(self)
        data["feature_names"] = list(self.feature_names)
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        """Parse a manifest; anything else (not UTF-8, not JSON, a field of the wrong type)
        raises ``ManifestInvalid``."""
        try:
            data = json.loads(text)
            thresholds = _field(data, "thresholds", dict)
            metrics = _field(data, "metrics", dict, default={})
            parent = _field(data, "parent_version", (str, type(None)), default=None)
            return cls(
                sha256=str(data["sha256"]),
                schema_version=str(data["schema_version"]),
                feature_names=tuple(str(n) for n in _field(data, "feature_names", list)),
                thresholds=Thresholds(
                    float(thresholds["low_upper"]), float(thresholds["high_lower"])
                ),
                metrics={str(k): float(v) for k, v in metrics.items()},
                parent_version=parent,
                created_at=str(data.get("created_at", "")),
                training_fingerprint=str(data.get("training_fingerprint", "")),
                model_kind=str(data.get("model_kind", "")),
            )
        # UnicodeDecodeError is a ValueError; RecursionError: JSON nested too deeply;
        # OverflowError: float() of a huge integer
        except (ValueError, KeyError, TypeError, RecursionError, OverflowError) as exc:
            raise ManifestInvalid("manifest.json is not a valid manifest") from exc


_MISSING = object()


def _field(data: Any, key: str, kind: type | tuple[type, ...], default: Any = _MISSING) -> Any:
    """``data[key]`` when ``data`` is an object and the value is a ``kind`` (an absent key gives
    ``default`` where there is one); else TypeError / KeyError."""
    if not isinstance(data, dict):
        raise TypeError("manifest is not a JSON object")
    if key not in data and default is not _MISSING:
        return default
    value = data[key]
    if not isinstance(value, kind):
        raise TypeError(f"manifest field {key} has the wrong type")
    return value


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: str
    version: str
    onnx_path: Path
    sha256: str
    manifest: Manifest

    @property
    def card_path(self) -> Path:
        return self.onnx_path.parent / CARD_FILE


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temp file in the same directory + fsync + os.replace: readers see the old
    content or the new, never a torn file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # ---- queries ------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise VersionNotFound("invalid model name")
        return self.root / name

    def _version_dir(self, name: str, version: str) -> Path:
        """The directory of an existing version; a string that is not a version name is refused
        before it becomes part of a path (and is not echoed: it may be anything)."""
        if not is_version(version):
            raise VersionNotFound(f"{name}: not a version name (v<number>)")
        d = self._dir(name) / version
        try:
            exists = d.is_dir()
        except OSError as exc:
            raise VersionNotFound(f"{name} {version} cannot be read") from exc
        if not exists:
            raise VersionNotFound(f"{name} has no version {version}")
        return d

    def versions(self, name: str) -> list[str]:
        d = self._dir(name)
        try:
            if not d.is_dir():
                return []
            found = [p.name for p in d.iterdir() if is_version(p.name) and p.is_dir()]
        except OSError as exc:
            raise RegistryStateInvalid(f"{name}: the registry directory cannot be read") from exc
        return sorted(found, key=lambda v: int(v[1:]))

    def active_version(self, name: str) -> str | None:
        """ACTIVE's version, None when ACTIVE is absent or empty; ``RegistryStateInvalid`` when
        it cannot be read or holds anything but one version name."""
        words = _read_words(self._dir(name) / ACTIVE_FILE, name)
        if not words:
            return None
        if len(words) != 1:
            raise RegistryStateInvalid(f"{name}: ACTIVE does not hold one version name")
        return words[0]

    def history(self, name: str) -> list[str]:
        """Previously active versions, oldest first (``RegistryStateInvalid`` if unreadable).
        Trailing entries naming the ACTIVE version are what a crash between the two writes of
        a promotion or rollback leaves behind: not history (module docstring)."""
        words = _read_words(self._dir(name) / HISTORY_FILE, name)
        active = self._active_or_none(name)
        while words and words[-1] == active:
            words.pop()
        return words

    def manifest(self, name: str, version: str) -> Manifest:
        path = self._version_dir(name, version) / MANIFEST_FILE
        try:
            text = path.read_bytes()
        except FileNotFoundError as exc:
            raise ManifestMissing(f"{name} {version} has no manifest") from exc
        except OSError as exc:  # a directory, no permission ...
            raise ManifestInvalid(f"{name} {version}: manifest.json cannot be read") from exc
        return Manifest.from_json(text)

    def load(self, name: str, version: str | None = None) -> RegisteredModel:
        return self._load(name, version)[0]

    def _load(self, name: str, version: str | None) -> tuple[RegisteredModel, bytes]:
        """The verified model and the very bytes that were hashed and parsed."""
        if version is None:
            version = self.active_version(name)
            if version is None:
                raise VersionNotFound(f"{name} has no active version", reason="no_active_version")
        manifest = self.manifest(name, version)
        onnx_path = self._version_dir(name, version) / MODEL_FILE
        try:
            data = onnx_path.read_bytes()
        except OSError as exc:
            raise ModelMissing(f"{name} {version}: model.onnx is missing or unreadable") from exc
        digest = _sha256(data)
        if digest != manifest.sha256:
            raise ChecksumMismatch(f"{name} {version}: model.onnx does not match its manifest")
        _check_schema(manifest.feature_names, manifest.schema_version)
        _check_graph(data, len(manifest.feature_names))
        return RegisteredModel(name, version, onnx_path, digest, manifest), data

    # ---- changes ------------------------------------------------------------------------
    def register(
        self,
        name: str,
        onnx_bytes: bytes,
        *,
        thresholds: Thresholds,
        metrics: dict[str, float],
        training_fingerprint: str,
        model_card: str,
        feature_names: tuple[str, ...] = FEATURE_NAMES,
        schema_version: str = SCHEMA_VERSION,
        parent_version: str | None = None,
        model_kind: str = "",
        version: str | None = None,
    ) -> RegisteredModel:
        """Store a new version (not yet active). Refuses a protected feature or a schema
        other than the serving schema, and a graph that does not parse."""
        _check_schema(feature_names, schema_version)
        _check_graph(onnx_bytes, len(feature_names))
        _check_metadata(onnx_bytes, feature_names, schema_version, thresholds, training_fingerprint)
        if version is not None and not is_version(version):
            raise VersionNotFound("version must look like v<number>")
        d = self._dir(name)
        # Under the lock: the version name chosen, the parent read and the directory renamed
        # into place as one step for every process sharing the registry.
        with self._locked(name):
            if version is None:
                version = f"v{self._highest_number(name) + 1}"
            if parent_version is None:
                parent_version = self._active_or_none(name)
            manifest = Manifest(
                sha256=_sha256(onnx_bytes),
                schema_version=schema_version,
                feature_names=tuple(feature_names),
                thresholds=thresholds,
                metrics=dict(metrics),
                parent_version=parent_version,
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                training_fingerprint=training_fingerprint,
                model_kind=model_kind,
            )
            _place_version(d, name, version, onnx_bytes, manifest.to_json(), model_card)
            return self.load(name, version)

    def promote(
        self, name: str, version: str, gates: PromotionGates | None = None
    ) -> PromotionReport:
        """Make ``version`` ACTIVE if it loads cleanly, passes every gate and scores the
        verification rows to probabilities; else raise (``GateFailed`` carries the report,
        ``ModelUnusable`` names the runtime failure)."""
        with self._locked(name):
            report, data = self._gated(name, version, gates)
            check_runs(data)
            self._activate(name, version)
        return report

    def rollback(self, name: str, gates: PromotionGates | None = None) -> str:
        """Re-activate the previously active version; returns it. The same checks as a
        promotion (load, gates, a run): a service on the same gates would refuse it otherwise,
        and registry and service would disagree on what is active."""
        with self._locked(name):
            history = self.history(name)
            if not history:
                raise NothingToRollBack(f"{name} has no previous version")
            previous = history[-1]
            check_runs(self._gated(name, previous, gates)[1])
            # ACTIVE first: a crash before HISTORY is rewritten leaves HISTORY ending in the
            # ACTIVE version, which history() reads as the rollback having finished.
            _write_atomic(self._dir(name) / ACTIVE_FILE, f"{previous}\n".encode())
            _write_atomic(
                self._dir(name) / HISTORY_FILE, "".join(f"{v}\n" for v in history[:-1]).encode()
            )
        return previous

    def _gated(
        self, name: str, version: str, gates: PromotionGates | None
    ) -> tuple[PromotionReport, bytes]:
        model, data = self._load(name, version)
        report = apply_gates(name, version, model.manifest.metrics, gates or PromotionGates())
        if not report.passed:
            raise GateFailed(report)
        return report, data

    @contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        """An exclusive flock on ``<name>/.lock`` for the duration of a change."""
        d = self._dir(name)
        d.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(d / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RegistryStateInvalid(f"{name}: the registry lock cannot be opened") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _highest_number(self, name: str) -> int:
        """The highest version number ever used that the registry still shows: directories,
        and the names in ACTIVE and HISTORY (a deleted version directory must not give its
        name to a new model while replicas may still serve the old one under it)."""
        names = [*self.versions(name), *self.history(name)]
        active = self._active_or_none(name)
        if active is not None:
            names.append(active)
        return max((int(v[1:]) for v in names), default=0)

    def _active_or_none(self, name: str) -> str | None:
        # A damaged ACTIVE must not block the promotion that repairs it; it is simply not
        # recorded as a parent or in HISTORY.
        try:
            return self.active_version(name)
        except RegistryStateInvalid:
            return None

    def _activate(self, name: str, version: str) -> None:
        """ACTIVE := ``version``, the old one appended to HISTORY first (module docstring)."""
        d = self._dir(name)
        current = self._active_or_none(name)
        if current is not None and current != version:
            history = [*self.history(name), current]
            _write_atomic(d / HISTORY_FILE, "".join(f"{v}\n" for v in history).encode())
        _write_atomic(d / ACTIVE_FILE, f"{version}\n".encode())


def _place_version(
    d: Path, name: str, version: str, onnx_bytes: bytes, manifest: str, model_card: str
) -> None:
    """Build the version in a hidden directory and rename it into place, so that a
    half-written version is never listed."""
    staging = Path(tempfile.mkdtemp(dir=d, prefix=f".{version}."))
    try:
        (staging / MODEL_FILE).write_bytes(onnx_bytes)
        (staging / MANIFEST_FILE).write_text(manifest)
        (staging / CARD_FILE).write_text(model_card)
        try:
            staging.rename(d / version)
        except OSError as exc:
            raise VersionExists(f"{name} {version} already exists") from exc
    finally:
        if staging.exists():
            for p in staging.iterdir():
                p.unlink()
            staging.rmdir()


def _read_words(path: Path, name: str) -> list[str]:
    """The version names in ACTIVE or HISTORY ([] when the file is absent)."""
    try:
        words = path.read_bytes().decode("utf-8").split()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryStateInvalid(f"{name}: {path.name} cannot be read") from exc
    if not all(is_version(w) for w in words):
        raise RegistryStateInvalid(f"{name}: {path.name} holds something other than versions")
    return words


def _check_schema(feature_names: tuple[str, ...], schema_version: str) -> None:
    try:
        assert_schema_allowed(feature_names)
    except ProtectedFeatureError as exc:
        raise SchemaMismatch(str(exc), reason="protected_feature") from exc
    if tuple(feature_names) != FEATURE_NAMES or schema_version != SCHEMA_VERSION:
        raise SchemaMismatch("feature names or schema version differ from FEATURE_SCHEMA")


def _check_metadata(
    data: bytes,
    feature_names: tuple[str, ...],
    schema_version: str,
    thresholds: Thresholds,
    training_fingerprint: str,
) -> None:
    """What the artifact says about itself (ONNX metadata, written at export) must agree
    with what is registered for it: a model trained on another schema or column order, or
    registered with another model's thresholds, fingerprint or evaluation, is refused.
    An artifact without such metadata is judged by the manifest alone."""
    meta = onnx_metadata(data)
    try:
        if "schema_version" in meta and meta["schema_version"] != schema_version:
            raise SchemaMismatch("the model's own schema version differs from the serving one")
        if "schema" in meta:
            names = tuple(f["name"] for f in json.loads(meta["schema"])["features"])
            if names != tuple(feature_names):
                raise SchemaMismatch("the model's own feature names differ from the serving ones")
        if "thresholds" in meta:
            own = json.loads(meta["thresholds"])
            if (float(own["low_upper"]), float(own["high_lower"])) != (
                thresholds.low_upper,
                thresholds.high_lower,
            ):
                raise EvaluationMismatch("thresholds differ from those exported with the model")
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelCorrupt("model.onnx metadata cannot be read") from exc
    own_fingerprint = meta.get("training_fingerprint")
    if own_fingerprint and training_fingerprint and own_fingerprint != training_fingerprint:
        raise EvaluationMismatch("training fingerprint differs from the model's own")


def _check_graph(data: bytes, n_features: int) -> None:
    try:
        proto = onnx.load_from_string(data)
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise ModelCorrupt("model.onnx does not parse as a valid ONNX model") from exc
    inputs = [i.name for i in proto.graph.input]
    outputs = [o.name for o in proto.graph.output]
    if inputs != [INPUT_NAME] or OUTPUT_NAME not in outputs:
        raise ModelCorrupt("model.onnx does not have the features -> probabilities signature")
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 2 or dims[1].dim_value != n_features:
        raise ModelCorrupt("model.onnx input width differs from the manifest's feature count")
