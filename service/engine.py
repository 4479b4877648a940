"""The transport-free engine: FHIR bundle bytes in, a durably recorded Assessment out.

Pipeline of ``assess`` (stages timed for ``triage_stage_latency_seconds``):

    idempotency lookup -> parse -> extract (+ counterfactual variants) -> vectorize + infer
    -> HEART -> policy -> contributions -> counterfactual scoring
    -> [fairness monitor lock: add + audit -> deadline check -> persist (committed)]
    -> metrics -> Assessment

Fail closed: if the record cannot be written ``AuditStoreUnavailable`` is raised and the
fairness window is put back exactly as it was (the decision out, what it evicted back in);
nothing unrecorded is ever returned, and because the write happens under the monitor's lock
no other request's audit, scrape or report ever counts an unrecorded decision.

The served model is ONE immutable ``ServingModel`` (session, manifest, thresholds, ref) held
by a single attribute. A request reads it once, so ``swap_model`` never makes a request mix
two versions. Model changes (reload, swap, shadow, activate, rollback, the registry watcher)
are serialised by one lock; loading happens before the swap, so a failed load leaves the
current model serving. A shadow candidate scores after the record is committed and never
changes a response (docs/lifecycle.md).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from fhir_adapters import cited_references
from fhir_adapters.facts import unversioned
from fhir_adapters.features import Extraction
from fhir_adapters.pseudonym import pseudonym
from models.errors import NothingToRollBack, RegistryError
from models.gates import apply_gates
from models.heart import heart_score
from models.registry import RegisteredModel, Registry, is_version
from models.schema import vectorize
from service.assessment import (
    Assessment,
    Counterfactual,
    FairnessAudit,
    ModelRef,
    OutcomeAck,
)
from service.assessment_codec import dumps
from service.audit_store import AuditRecord, AuditStore, StoredRequest
from service.contributions import ContributionExplainer, evidence
from service.counterfactual import evaluate, variant_grid
from service.deidentify import Pseudonyms, restore_sources, stored_assessment, stored_features
from service.errors import (
    AmbiguousReference,
    AuditStoreUnavailable,
    DeadlineExceeded,
    IdempotencyConflict,
    InvalidRequest,
    ModelNotReady,
    ModelRejected,
    PromotionRefused,
    UnknownReference,
)
from service.extraction import extract_timed
from service.fairness import Decision, FairnessConfig, FairnessMonitor, FairnessReporter
from service.heart_basis import heart_basis, heart_warnings
from service.keys import load_pseudonym_key
from service.labels import FACILITY_OTHER, FACILITY_UNKNOWN, GroupLabels, group_labels
from service.metrics import Metrics
from service.policy import BandThresholds, recommend
from service.scoring import Scorer, load_scorer
from service.settings import Settings
from service.shadow import PromotionCheck, ShadowCollector, ShadowState, check_promotion, summary

logger = logging.getLogger(__name__)

# What the watcher remembers when ACTIVE cannot be read (never a version name): the failure is
# counted and logged once, not at every poll, until ACTIVE changes.
_UNREADABLE_ACTIVE = "<unreadable>"
# At start-up, how many HISTORY versions (newest first) are tried when ACTIVE does not load.
_MAX_START_FALLBACKS = 5


@dataclass(frozen=True, slots=True)
class ServingModel:
    """Everything a request needs from the model, swapped as one value."""

    registered: RegisteredModel
    scorer: Scorer
    thresholds: BandThresholds
    explainer: ContributionExplainer
    ref: ModelRef


def load_serving_model(registered: RegisteredModel, settings: Settings) -> ServingModel:
    """ONNX session + warm-up + the pieces derived from the manifest. Raises ModelNotReady."""
    scorer = load_scorer(registered, settings.execution_provider)
    t = registered.manifest.thresholds
    return ServingModel(
        registered=registered,
        scorer=scorer,
        thresholds=BandThresholds(t.low_upper, t.high_lower),
        explainer=ContributionExplainer(scorer),
        ref=ModelRef(registered.name, registered.version, registered.sha256, scorer.provider),
    )


def _encounter_references(reference: str) -> tuple[str, ...]:
    """What an encounter's assessments may be recorded under, for each form Assess accepts as
    ``encounter_id`` (the bare id, ``Encounter/<id>``, a fullUrl): the adapters pseudonymise
    ``Encounter/<id>``, or the fullUrl of an Encounter that has no id. A fullUrl ending in
    ``Encounter/<id>`` may be either."""
    reference = unversioned(reference)
    tail = _encounter_key(reference)
    if tail != reference and "/" not in tail:  # named with "Encounter/<id>"
        by_id = f"Encounter/{tail}"
        return (by_id,) if reference == by_id else (by_id, reference)
    if "/" in reference or reference.startswith("urn:"):
        return (reference,)
    return (f"Encounter/{reference}",)


MAX_REQUEST_ID_CHARS = 128  # a UUID is 36

# What the shadow candidate scores a recorded decision from: decision, features, basis, row.
_ShadowJob = tuple[Decision, Any, Any, Any]


class Engine:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        store: AuditStore,
        pseudonym_key: bytes,
        monitor: FairnessMonitor,
        reporter: FairnessReporter,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        metrics.expect_facilities((*settings.facility_allow_list, FACILITY_OTHER, FACILITY_UNKNOWN))
        self._store = store
        self._key = pseudonym_key
        self._extraction_config = settings.extraction_config(pseudonym_key)
        self._monitor = monitor
        self._reporter = reporter
        self._variants = variant_grid() if settings.counterfactual else ()
        self._model: ServingModel | None = None
        self._shadow: ShadowState | None = None
        self._closed = False
        self._lifecycle = threading.RLock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        # The registry's ACTIVE as last acted on. The watcher follows changes of ACTIVE, not
        # differences from the served version: a version an operator pinned with
        # ``load_version`` keeps serving until ACTIVE changes, and an ACTIVE version that
        # failed to load is not retried until it changes again.
        self._seen_active: str | None = None

    # --- construction --------------------------------------------------------------------
    @classmethod
    def create(cls, settings: Settings, metrics: Metrics, *, require_model: bool = True) -> Engine:
        """Pseudonym key, audit store, fairness windows restored from the store, the ACTIVE
        model loaded and warmed up. ``require_model=False`` starts without a model (``ready``
        is False and ``assess`` raises ModelNotReady until ``reload`` succeeds)."""
        key = load_pseudonym_key(settings)
        store = AuditStore(
            settings.audit_db_path,
            synchronous=settings.audit_synchronous,
            busy_timeout_ms=settings.audit_busy_timeout_ms,
        )
        config = FairnessConfig.from_settings(settings)
        monitor = FairnessMonitor(config)
        reporter = FairnessReporter(monitor, config)
        engine = cls(settings, metrics, store, key, monitor, reporter)
        try:
            engine._restore_fairness_windows()
            metrics.register([monitor.collector(), ShadowCollector(lambda: engine._shadow)])
            try:
                engine._load_at_start()
            except ModelNotReady as exc:
                if require_model:
                    raise
                logger.warning(
                    "starting without a model: not ready", extra={"fields": {"reason": exc.reason}}
                )
            reporter.start()
            engine.start_watcher()
        except BaseException:
            engine.close()
            raise
        return engine

    def _restore_fairness_windows(self) -> None:
        since = time.time() - self._settings.fairness_window_seconds
        rows = self._store.recent_decisions(since, self._settings.fairness_window_count)
        restored = self._monitor.restore(
            (
                Decision(
                    audit_id=r.audit_id,
                    at=r.at,
                    facility=r.labels.facility,
                    race=r.labels.race,
                    ethnicity=r.labels.ethnicity,
                    sex=r.labels.sex,
                    age_band=r.labels.age_band,
                    stratum=r.heart_band,
                    model_band=r.band,
                    escalated=r.escalated,
                    mace_probability=r.mace_probability,
                ),
                r.outcome,
            )
            for r in rows
        )
        logger.info("fairness windows restored with %d decisions", restored)

    # --- model lifecycle -------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self._model is not None and not self._closed

    @property
    def model_ref(self) -> ModelRef:
        model = self._model
        if model is None:
            raise ModelNotReady()
        return model.ref

    @property
    def shadow_ref(self) -> ModelRef | None:
        shadow = self._shadow
        return None if shadow is None else shadow.model.ref

    def _registry(self) -> Registry:
        return Registry(self._settings.model_registry)

    def _failed(self, reason: str, version: str | None) -> None:
        """Count and log a failed load (reason code and version only: no patient data; a
        caller's string that is not a version name is not echoed)."""
        self._metrics.record_model_load_failure(reason)
        shown = "ACTIVE" if version is None else version if is_version(version) else "<invalid>"
        logger.warning(
            "model load failed; the current model keeps serving",
            extra={"fields": {"reason": reason, "version": shown}},
        )

    def _active(self) -> str:
        """The registry's ACTIVE version, remembered as acted on (the watcher then waits for a
        change). Raises ModelNotReady (none set) or ModelRejected (unreadable); counted."""
        try:
            active = self._registry().active_version(self._settings.model_name)
        except RegistryError as exc:
            self._seen_active = _UNREADABLE_ACTIVE
            self._failed(exc.reason, None)
            raise ModelRejected(exc.reason, "the registry's ACTIVE cannot be used") from exc
        if active is None:
            self._failed("no_active_version", None)
            raise ModelNotReady("no_active_version", "the registry has no active model")
        self._seen_active = active
        return active

    def _registered(self, version: str | None) -> RegisteredModel:
        """The registry's ``version`` (None: ACTIVE), verified by the registry (manifest,
        sha256, schema, graph). Raises ModelNotReady (no ACTIVE) or ModelRejected."""
        try:
            return self._registry().load(self._settings.model_name, version)
        except RegistryError as exc:
            self._failed(exc.reason, version)
            if version is None and exc.reason == "no_active_version":
                raise ModelNotReady(exc.reason, "the registry has no active model") from exc
            raise ModelRejected(exc.reason, "the registry refused the version") from exc

    def _load(self, registered: RegisteredModel) -> ServingModel:
        """Gates on the manifest metrics, ONNX session, warm-up. Counts and logs a failure."""
        report = apply_gates(
            registered.name,
            registered.version,
            registered.manifest.metrics,
            self._settings.promotion_gates,
        )
        if not report.passed:
            self._failed("gates_not_met", registered.version)
            failed = ", ".join(r.name for r in report.results if not r.passed)
            raise ModelRejected("gates_not_met", f"failed gates: {failed}")
        try:
            return load_serving_model(registered, self._settings)
        except ModelNotReady as exc:
            self._failed(exc.reason, registered.version)
            raise

    def _serve(self, serving: ServingModel) -> ModelRef:
        self._model = serving  # one reference store: requests see the old model or the new
        self._metrics.record_model_loaded(serving.ref)
        logger.info(
            "serving model",
            extra={"fields": {"model": serving.ref.name, "version": serving.ref.version}},
        )
        return serving.ref

    def reload(self) -> ModelRef:
        """Load the registry's ACTIVE version of ``settings.model_name`` and serve it."""
        return self.load_version(None)

    def load_version(self, version: str | None) -> ModelRef:
        """Load ``version`` (None: the registry's ACTIVE), validate and warm it up, then swap.
        On any failure the current model keeps serving."""
        with self._lifecycle:
            if version is None:
                # Loaded or not, this ACTIVE has been acted on: the watcher waits for a change
                # (a start without a model does not retry the version that just failed).
                version = self._active()
            return self._serve(self._load(self._registered(version)))

    def _load_at_start(self) -> None:
        """Serve ACTIVE; when it does not load, the newest HISTORY version that does (ACTIVE is
        left as it is and the watcher waits for it to change). Without this a bad ACTIVE takes
        every restarted replica down although a good model is on disk. Raises ModelNotReady
        when nothing loads (or no ACTIVE is set: nothing was ever promoted)."""
        try:
            self.reload()
            return
        except ModelNotReady as exc:
            # no_active_version: nothing promoted; cuda_unavailable: no version would load
            if exc.reason in ("no_active_version", "cuda_unavailable"):
                raise
            refused = exc
        try:
            history = self._registry().history(self._settings.model_name)
        except RegistryError as exc:
            self._failed(exc.reason, None)
            raise refused from exc
        newest_first = [v for v in dict.fromkeys(reversed(history)) if v != self._seen_active]
        for version in newest_first[:_MAX_START_FALLBACKS]:
            try:
                ref = self.load_version(version)  # counted and logged if it fails
            except ModelNotReady:
                continue
            logger.warning(
                "ACTIVE does not load; serving the newest HISTORY version that does",
                extra={"fields": {"reason": refused.reason, "version": ref.version}},
            )
            return
        raise refused

    def swap_model(self, registered: RegisteredModel) -> ModelRef:
        """Load and warm up ``registered``, then replace the served model in one assignment.
        On failure the current model stays in service."""
        with self._lifecycle:
            return self._serve(self._load(registered))

    def rollback(self) -> ModelRef:
        """The registry's previous ACTIVE version, then serve it. The previous version is
        loaded, gated and warmed up first; only then does the registry change
        (``Registry.rollback``), so a failed rollback leaves registry and service as they were."""
        with self._lifecycle:
            name = self._settings.model_name
            registry = self._registry()
            try:
                history = registry.history(name)
                if not history:
                    raise NothingToRollBack(f"{name} has no previous version")
                serving = self._load(self._registered(history[-1]))
                registry.rollback(name, self._settings.promotion_gates)
            except RegistryError as exc:
                raise ModelRejected(exc.reason, "nothing was rolled back") from exc
            self._seen_active = serving.ref.version
            return self._serve(serving)

    # --- shadow ---------------------------------------------------------------------------
    def set_shadow(self, version: str | None) -> ModelRef | None:
        """Load ``version`` as the shadow candidate (same checks as a reload); None clears it."""
        with self._lifecycle:
            if version is None:
                self._shadow = None
                self._metrics.record_shadow_model(None)
                logger.info("shadow cleared")
                return None
            serving = self._load(self._registered(version))
            self._shadow = ShadowState.create(serving, self._monitor.config)
            self._metrics.record_shadow_model(serving.ref)
            logger.info("shadow model set", extra={"fields": {"version": serving.ref.version}})
            return serving.ref

    def shadow_check(self, shadow: ShadowState | None = None) -> PromotionCheck:
        """The fairness comparison ``activate_shadow`` applies, without acting on it; of
        ``shadow`` when given (a caller that already read the shadow state), else of the
        current one."""
        shadow = shadow if shadow is not None else self._shadow
        model = self._model
        if shadow is None:
            raise ModelRejected("no_shadow_model", "set a shadow model first")
        if model is None:
            raise ModelNotReady()
        return check_promotion(
            version=shadow.model.ref.version,
            active_metrics=model.registered.manifest.metrics,
            candidate_metrics=shadow.model.registered.manifest.metrics,
            active_views=shadow.paired.views(),
            shadow_views=shadow.monitor.views(),
            tolerance=self._settings.promotion_fairness_tolerance,
            min_mace=self._settings.fairness_min_group_count,
        )

    def activate_shadow(self) -> tuple[ModelRef, PromotionCheck]:
        """Promote the shadow candidate in the registry (gates, ACTIVE + HISTORY) and serve it.
        Refused (PromotionRefused, nothing changes) when it is less fair than the active model
        beyond ``settings.promotion_fairness_tolerance``."""
        with self._lifecycle:
            shadow = self._shadow
            check = self.shadow_check(shadow)
            assert shadow is not None  # shadow_check raised otherwise
            if not check.passed:
                self._metrics.record_promotion_refused()
                logger.warning(
                    "shadow promotion refused",
                    extra={"fields": {"version": check.version, "failed": list(check.failed)}},
                )
                raise PromotionRefused("shadow_less_fair", check.render(), check)
            ref = shadow.model.ref
            try:
                self._registry().promote(ref.name, ref.version, self._settings.promotion_gates)
            except RegistryError as exc:
                self._failed(exc.reason, ref.version)
                raise ModelRejected(exc.reason, "the registry refused the promotion") from exc
            self._shadow = None
            self._metrics.record_shadow_model(None)
            self._seen_active = ref.version
            return self._serve(shadow.model), check

    def _score_shadow(
        self, shadow: ShadowState, decision: Decision, features: Any, basis: Any, row: Any
    ) -> None:
        """Score the committed request with the candidate; never raises."""
        try:
            probability = shadow.model.scorer.probability(row)
            rec = recommend(
                features,
                probability,
                shadow.model.thresholds,
                basis,
                self._settings.escalation_max_esi,
            )
            shadow.paired.record(decision)
            shadow.monitor.record(
                replace(
                    decision,
                    model_band=rec.band.value,
                    escalated=rec.escalated,
                    mace_probability=probability,
                )
            )
            disagrees = rec.band.value != decision.model_band
            shadow.count(disagrees)
            self._metrics.record_shadow(decision.facility, rec.band.value, rec.escalated, disagrees)
            # An outcome reported after the commit but before the decision joined the shadow's
            # windows found nothing to join. Outcomes reach the store before any window, so
            # reading it now misses none (joining the same outcome twice changes nothing).
            mace = self._store.outcome_of(decision.audit_id)
            if mace is not None:
                shadow.monitor.record_outcome(decision.audit_id, mace)
                shadow.paired.record_outcome(decision.audit_id, mace)
        except Exception:
            self._metrics.record_shadow_error()
            logger.exception("shadow scoring failed")

    # --- registry watcher ---------------------------------------------------------------
    def start_watcher(self) -> None:
        """Poll the registry's ACTIVE every ``settings.registry_poll_s`` (0: no watcher)."""
        if self._settings.registry_poll_s <= 0 or self._watcher is not None:
            return
        self._watcher = threading.Thread(target=self._watch, name="registry-watcher", daemon=True)
        self._watcher.start()

    def check_registry(self) -> ModelRef | None:
        """Serve the registry's ACTIVE when it has changed since last seen; returns the new
        ref, or None when nothing was loaded. A version that fails is not retried until
        ACTIVE changes again (its failure was counted and logged once)."""
        with self._lifecycle:
            if self._closed:
                return None
            try:
                active = self._registry().active_version(self._settings.model_name)
            except RegistryError as exc:
                if self._seen_active != _UNREADABLE_ACTIVE:
                    self._seen_active = _UNREADABLE_ACTIVE
                    self._failed(exc.reason, None)
                return None
            if active is None or active == self._seen_active:
                return None
            self._seen_active = active
            model = self._model
            if model is not None and model.ref.version == active:
                return None
            try:
                ref = self.load_version(active)
            except ModelNotReady:  # ModelRejected too: counted and logged by the load
                return None
            logger.info("registry watcher reloaded", extra={"fields": {"version": ref.version}})
            return ref

    def _watch(self) -> None:
        while not self._stop.wait(self._settings.registry_poll_s):
            try:
                self.check_registry()
            except Exception:
                logger.exception("registry watcher failed")

    # --- assess ------------------------------------------------------------------------------
    def assess(
        self,
        bundle: bytes,
        *,
        request_id: str,
        encounter_id: str | None = None,
        deadline: float | None = None,
    ) -> Assessment:
        started = time.perf_counter()
        try:
            assessment, shadow_job = self._answer(bundle, request_id, encounter_id, deadline)
        except AuditStoreUnavailable as exc:
            # Read (the request_id look-up) or write: either way nothing could be recorded.
            self._metrics.record_audit_store_failure()
            logger.error("audit store unavailable (%s); request refused (fail closed)", exc.reason)
            raise
        finally:
            # Every call, answered or refused: the slowest (deadline exceeded, a store that
            # hangs) are the ones the tail must show.
            self._metrics.observe_stage("total", time.perf_counter() - started)
        shadow = self._shadow
        # The answer is recorded: a candidate may not make the clinician wait past the
        # caller's deadline (the shadow then misses this one decision).
        if (
            shadow_job is not None
            and shadow is not None
            and (deadline is None or time.monotonic() < deadline)
        ):
            self._score_shadow(shadow, *shadow_job)
        return assessment

    def _answer(
        self, bundle: bytes, request_id: str, encounter_id: str | None, deadline: float | None
    ) -> tuple[Assessment, _ShadowJob | None]:
        """The assessment, and what the shadow candidate needs to score it (None for a replay)."""
        if not request_id:
            raise InvalidRequest("missing_request_id")
        if len(request_id) > MAX_REQUEST_ID_CHARS:
            # It is stored and echoed as given: an idempotency key, not a place for data.
            raise InvalidRequest(
                "request_id_too_long", f"at most {MAX_REQUEST_ID_CHARS} characters"
            )
        model = self._model  # read once: this request uses exactly this model
        if model is None or self._closed:
            raise ModelNotReady()
        _check_deadline(deadline)
        bundle_sha256 = hashlib.sha256(bundle).hexdigest()
        requested = pseudonym(self._key, _encounter_key(encounter_id)) if encounter_id else ""
        stored = self._store.find(request_id)
        if stored is not None:
            return self._replay(stored, bundle, bundle_sha256, requested), None

        created_at = datetime.now(UTC)
        extracted = extract_timed(
            bundle,
            self._extraction_config,
            request_time=created_at,
            encounter_id=encounter_id or None,
            variants=self._variants,
        )
        self._metrics.observe_stage("parse", extracted.parse_s)
        self._metrics.observe_stage("extract", extracted.extract_s)
        extraction = extracted.actual
        features = extraction.features

        t_infer = time.perf_counter()
        row = vectorize(features)
        probability = model.scorer.probability(row)
        self._metrics.observe_stage("infer", time.perf_counter() - t_infer)

        heart = heart_score(features)
        basis = heart_basis(heart)
        max_esi = self._settings.escalation_max_esi
        rec = recommend(features, probability, model.thresholds, basis, max_esi)
        contributions = model.explainer.top(features, row)

        t_audit = time.perf_counter()
        counterfactual: Counterfactual | None = None
        if self._variants:
            counterfactual = evaluate(
                rec, extracted.variants, model.scorer, model.thresholds, max_esi
            )
        audit_id = str(uuid.uuid4())
        labels = group_labels(extraction.audit, self._settings.facility_allow_list)
        decision = Decision(
            audit_id=audit_id,
            at=created_at.timestamp(),
            facility=labels.facility,
            race=labels.race,
            ethnicity=labels.ethnicity,
            sex=labels.sex,
            age_band=labels.age_band,
            stratum=basis.band.value,
            model_band=rec.band.value,
            escalated=rec.escalated,
            mace_probability=probability,
        )
        # The decision joins the fairness window and is written to the store under the
        # monitor's lock: if anything fails before the record is committed, the window is put
        # back as it was, and no other request's audit ever counted it meanwhile.
        try:
            with self._monitor.recording(decision) as audit:
                fairness: FairnessAudit = replace(audit, counterfactual=counterfactual)
                self._metrics.observe_stage("audit", time.perf_counter() - t_audit)
                assessment = Assessment(
                    request_id=request_id,
                    audit_id=audit_id,
                    created_at=created_at,
                    mace_probability=probability,
                    recommendation=rec,
                    heart=basis,
                    contributions=contributions,
                    warnings=tuple(f"{w.code} at {w.path}" for w in features.warnings)
                    + heart_warnings(heart),
                    model=model.ref,
                    fairness_audit=fairness,
                    encounter_selection=features.encounter_selection.value,
                    evidence=evidence(features),
                )
                record = _record(
                    assessment, extraction, bundle_sha256, requested, labels, fairness, self._key
                )
                _check_deadline(deadline)
                t_persist = time.perf_counter()
                existing = self._store.insert(record)
                self._metrics.observe_stage("persist", time.perf_counter() - t_persist)
                if existing is not None:
                    raise _RecordedFirst(existing)
        except _RecordedFirst as first:
            # A concurrent request with the same request_id was recorded first: its
            # assessment is the answer, and this decision was taken back out of the window.
            return self._replay(first.stored, bundle, bundle_sha256, requested), None

        self._metrics.record_assessment(labels, rec.band.value, basis.band.value, rec.escalated)
        return assessment, (decision, features, basis, row)

    def _replay(
        self, stored: StoredRequest, bundle: bytes, bundle_sha256: str, requested: str
    ) -> Assessment:
        """The recorded answer to a retried request_id: the same bundle and the same named
        encounter (another encounter of the same bundle is another question). The store keeps
        pseudonymised sources (``service.deidentify``); the retry's bundle maps them back."""
        if stored.bundle_sha256 != bundle_sha256 or stored.requested_encounter not in (
            None,
            requested,
        ):
            raise IdempotencyConflict("request_id_reused")
        references = cited_references(bundle)
        return restore_sources(stored.assessment, references, self._key)

    # --- outcomes ------------------------------------------------------------------------------
    def report_outcome(
        self,
        *,
        audit_id: str | None,
        encounter_reference: str | None,
        mace: bool,
        occurred_at: datetime | None,
    ) -> OutcomeAck:
        """Join a delayed outcome by audit id, or by encounter reference (every assessment of
        that encounter). Reporting the same outcome again is a no-op; a different MACE value
        or occurred_at for an already reported decision raises IdempotencyConflict. An
        encounter reference that matches more than one patient's (or facility's) assessments
        raises AmbiguousReference and writes nothing: encounter ids repeat across EHRs."""
        if bool(audit_id) == bool(encounter_reference):
            raise InvalidRequest("need_audit_id_or_encounter_reference")
        if audit_id:
            if not self._store.has_audit_id(audit_id):
                raise UnknownReference("unknown_audit_id")
            audit_ids: tuple[str, ...] = (audit_id,)
        else:
            assert encounter_reference is not None  # for mypy: checked above
            keys = tuple(
                pseudonym(self._key, r) for r in _encounter_references(encounter_reference)
            )
            rows = self._store.encounter_assessments(keys)
            if not rows:
                raise UnknownReference("unknown_encounter")
            # Only the rows checked here are written, so an assessment of another patient
            # recorded meanwhile is never joined either.
            # Facilities outside the allow-list share the label "other"; the facility's own
            # pseudonym tells them apart (rows written before schema 3 have none).
            sites = {r.facility_pseudonym for r in rows if r.facility_pseudonym is not None}
            if len({(r.patient_pseudonym, r.facility) for r in rows}) > 1 or len(sites) > 1:
                raise AmbiguousReference(
                    "ambiguous_encounter",
                    "the encounter reference matches more than one patient or facility",
                )
            audit_ids = tuple(r.audit_id for r in rows)
        reported_at = datetime.now(UTC)
        result = self._store.record_outcome(audit_ids, mace, occurred_at, reported_at)
        # Every joined decision, not only the newly recorded ones: a repeat of the same outcome
        # changes nothing in a window, and it heals a window that missed the first report
        # because the request failed after the outcome was committed.
        shadow = self._shadow
        for joined in audit_ids:
            self._monitor.record_outcome(joined, mace)
            if shadow is not None:
                shadow.monitor.record_outcome(joined, mace)
                shadow.paired.record_outcome(joined, mace)
        for row in self._store.decisions(result.newly_recorded):
            self._metrics.record_outcome(row.labels, mace, row.band)
        return OutcomeAck(
            audit_id=audit_ids[-1],
            duplicate=not result.newly_recorded,
            audit_ids=audit_ids,
            mace=mace,
            occurred_at=occurred_at,
            reported_at=reported_at,
        )

    # --- fairness report, lifecycle ---------------------------------------------------------
    def fairness_report(self) -> dict[str, Any]:
        """The background report, plus the shadow candidate's figures while one is set."""
        report = dict(self._reporter.latest())
        report["shadow"] = self.shadow_report()
        return report

    def shadow_report(self) -> dict[str, Any] | None:
        shadow = self._shadow
        if shadow is None:
            return None
        scored, disagreements = shadow.counts()
        min_mace = self._settings.fairness_min_group_count
        return {
            "model": shadow.model.ref.name,
            "version": shadow.model.ref.version,
            "since": datetime.fromtimestamp(shadow.started_at, UTC).isoformat(),
            "scored": scored,
            "disagreements": disagreements,
            "disagreement_rate": disagreements / scored if scored else None,
            "shadow": summary(shadow.monitor.views(), min_mace),
            "active": summary(shadow.paired.views(), min_mace),
            "promotion_check": self.shadow_check(shadow).to_json() if self._model else None,
        }

    def close(self) -> None:
        """Stop the background report, checkpoint and close the store. Idempotent."""
        self._closed = True
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(10)
        self._reporter.stop()
        self._store.close()
        self._metrics.record_model_unloaded()


class _RecordedFirst(Exception):  # noqa: N818 - control flow, never leaves the engine
    def __init__(self, stored: StoredRequest) -> None:
        super().__init__()
        self.stored = stored


def _check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceeded()


def _encounter_key(encounter_id: str) -> str:
    """The id an encounter_id names, however it is written: "e1", "Encounter/e1" and
    ".../Encounter/e1" are one encounter to the extractor, so one to idempotency too."""
    encounter_id = unversioned(encounter_id)
    _, marker, tail = encounter_id.rpartition("Encounter/")
    return tail if marker and tail else encounter_id


def _record(
    assessment: Assessment,
    extraction: Extraction,
    bundle_sha256: str,
    requested_encounter: str,
    labels: GroupLabels,
    fairness: FairnessAudit,
    key: bytes,
) -> AuditRecord:
    pseudonyms = Pseudonyms(key)
    facility = extraction.audit.facility
    return AuditRecord(
        assessment=assessment,
        assessment_json=dumps(stored_assessment(assessment, pseudonyms)),
        bundle_sha256=bundle_sha256,
        patient_pseudonym=extraction.audit.patient_pseudonym,
        encounter_pseudonym=extraction.audit.encounter_pseudonym,
        features_json=stored_features(extraction.features, pseudonyms),
        recommendation_json=dumps(assessment.recommendation),
        fairness_json=dumps(fairness),
        labels=labels,
        heart_band=assessment.heart.band.value,
        requested_encounter=requested_encounter,
        facility_pseudonym=None if facility is None else pseudonym(key, facility),
    )
