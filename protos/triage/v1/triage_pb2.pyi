import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RiskBand(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RISK_BAND_UNSPECIFIED: _ClassVar[RiskBand]
    LOW: _ClassVar[RiskBand]
    MODERATE: _ClassVar[RiskBand]
    HIGH: _ClassVar[RiskBand]

class AuditStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_STATUS_UNSPECIFIED: _ClassVar[AuditStatus]
    OK: _ClassVar[AuditStatus]
    INSUFFICIENT_DATA: _ClassVar[AuditStatus]
    WARN: _ClassVar[AuditStatus]
    ALERT: _ClassVar[AuditStatus]
RISK_BAND_UNSPECIFIED: RiskBand
LOW: RiskBand
MODERATE: RiskBand
HIGH: RiskBand
AUDIT_STATUS_UNSPECIFIED: AuditStatus
OK: AuditStatus
INSUFFICIENT_DATA: AuditStatus
WARN: AuditStatus
ALERT: AuditStatus

class AssessRequest(_message.Message):
    __slots__ = ("fhir_bundle", "request_id", "encounter_id")
    FHIR_BUNDLE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ENCOUNTER_ID_FIELD_NUMBER: _ClassVar[int]
    fhir_bundle: bytes
    request_id: str
    encounter_id: str
    def __init__(self, fhir_bundle: _Optional[bytes] = ..., request_id: _Optional[str] = ..., encounter_id: _Optional[str] = ...) -> None: ...

class Assessment(_message.Message):
    __slots__ = ("request_id", "audit_id", "mace_probability", "band", "esi_level", "recommended_actions", "heart_score", "heart", "top_features", "warnings", "model", "fairness_audit", "rationale", "created_at", "encounter_selection", "escalated", "evidence")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    MACE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    BAND_FIELD_NUMBER: _ClassVar[int]
    ESI_LEVEL_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDED_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    HEART_SCORE_FIELD_NUMBER: _ClassVar[int]
    HEART_FIELD_NUMBER: _ClassVar[int]
    TOP_FEATURES_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FAIRNESS_AUDIT_FIELD_NUMBER: _ClassVar[int]
    RATIONALE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ENCOUNTER_SELECTION_FIELD_NUMBER: _ClassVar[int]
    ESCALATED_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    audit_id: str
    mace_probability: float
    band: RiskBand
    esi_level: int
    recommended_actions: _containers.RepeatedScalarFieldContainer[str]
    heart_score: int
    heart: HeartComponents
    top_features: _containers.RepeatedCompositeFieldContainer[Contribution]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    model: ModelInfo
    fairness_audit: FairnessAudit
    rationale: _containers.RepeatedScalarFieldContainer[str]
    created_at: _timestamp_pb2.Timestamp
    encounter_selection: str
    escalated: bool
    evidence: _containers.RepeatedCompositeFieldContainer[Evidence]
    def __init__(self, request_id: _Optional[str] = ..., audit_id: _Optional[str] = ..., mace_probability: _Optional[float] = ..., band: _Optional[_Union[RiskBand, str]] = ..., esi_level: _Optional[int] = ..., recommended_actions: _Optional[_Iterable[str]] = ..., heart_score: _Optional[int] = ..., heart: _Optional[_Union[HeartComponents, _Mapping]] = ..., top_features: _Optional[_Iterable[_Union[Contribution, _Mapping]]] = ..., warnings: _Optional[_Iterable[str]] = ..., model: _Optional[_Union[ModelInfo, _Mapping]] = ..., fairness_audit: _Optional[_Union[FairnessAudit, _Mapping]] = ..., rationale: _Optional[_Iterable[str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., encounter_selection: _Optional[str] = ..., escalated: _Optional[bool] = ..., evidence: _Optional[_Iterable[_Union[Evidence, _Mapping]]] = ...) -> None: ...

class Evidence(_message.Message):
    __slots__ = ("finding", "source_ids")
    FINDING_FIELD_NUMBER: _ClassVar[int]
    SOURCE_IDS_FIELD_NUMBER: _ClassVar[int]
    finding: str
    source_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, finding: _Optional[str] = ..., source_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class HeartComponents(_message.Message):
    __slots__ = ("history", "ecg", "age", "risk_factors", "troponin", "band")
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    ECG_FIELD_NUMBER: _ClassVar[int]
    AGE_FIELD_NUMBER: _ClassVar[int]
    RISK_FACTORS_FIELD_NUMBER: _ClassVar[int]
    TROPONIN_FIELD_NUMBER: _ClassVar[int]
    BAND_FIELD_NUMBER: _ClassVar[int]
    history: int
    ecg: int
    age: int
    risk_factors: int
    troponin: int
    band: RiskBand
    def __init__(self, history: _Optional[int] = ..., ecg: _Optional[int] = ..., age: _Optional[int] = ..., risk_factors: _Optional[int] = ..., troponin: _Optional[int] = ..., band: _Optional[_Union[RiskBand, str]] = ...) -> None: ...

class Contribution(_message.Message):
    __slots__ = ("feature", "value", "weight", "status", "source_ids")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_IDS_FIELD_NUMBER: _ClassVar[int]
    feature: str
    value: str
    weight: float
    status: str
    source_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, feature: _Optional[str] = ..., value: _Optional[str] = ..., weight: _Optional[float] = ..., status: _Optional[str] = ..., source_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "version", "sha256", "execution_provider")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    sha256: str
    execution_provider: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., sha256: _Optional[str] = ..., execution_provider: _Optional[str] = ...) -> None: ...

class FairnessAudit(_message.Message):
    __slots__ = ("status", "rule", "groups_involved", "facility", "window_size", "escalation_definition", "parity", "counterfactual")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    GROUPS_INVOLVED_FIELD_NUMBER: _ClassVar[int]
    FACILITY_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SIZE_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_DEFINITION_FIELD_NUMBER: _ClassVar[int]
    PARITY_FIELD_NUMBER: _ClassVar[int]
    COUNTERFACTUAL_FIELD_NUMBER: _ClassVar[int]
    status: AuditStatus
    rule: str
    groups_involved: _containers.RepeatedScalarFieldContainer[str]
    facility: str
    window_size: int
    escalation_definition: str
    parity: _containers.RepeatedCompositeFieldContainer[ParityResult]
    counterfactual: Counterfactual
    def __init__(self, status: _Optional[_Union[AuditStatus, str]] = ..., rule: _Optional[str] = ..., groups_involved: _Optional[_Iterable[str]] = ..., facility: _Optional[str] = ..., window_size: _Optional[int] = ..., escalation_definition: _Optional[str] = ..., parity: _Optional[_Iterable[_Union[ParityResult, _Mapping]]] = ..., counterfactual: _Optional[_Union[Counterfactual, _Mapping]] = ...) -> None: ...

class ParityResult(_message.Message):
    __slots__ = ("attribute", "stratum", "difference", "ratio", "groups", "sufficient")
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    STRATUM_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    RATIO_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    SUFFICIENT_FIELD_NUMBER: _ClassVar[int]
    attribute: str
    stratum: str
    difference: float
    ratio: float
    groups: _containers.RepeatedCompositeFieldContainer[GroupRate]
    sufficient: bool
    def __init__(self, attribute: _Optional[str] = ..., stratum: _Optional[str] = ..., difference: _Optional[float] = ..., ratio: _Optional[float] = ..., groups: _Optional[_Iterable[_Union[GroupRate, _Mapping]]] = ..., sufficient: _Optional[bool] = ...) -> None: ...

class GroupRate(_message.Message):
    __slots__ = ("group", "count", "escalated", "rate", "ci_low", "ci_high", "sufficient", "outcomes", "mace", "false_negative_rate", "missed", "fnr_ci_low", "fnr_ci_high", "mean_predicted", "observed_mace_rate")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    ESCALATED_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    SUFFICIENT_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    MACE_FIELD_NUMBER: _ClassVar[int]
    FALSE_NEGATIVE_RATE_FIELD_NUMBER: _ClassVar[int]
    MISSED_FIELD_NUMBER: _ClassVar[int]
    FNR_CI_LOW_FIELD_NUMBER: _ClassVar[int]
    FNR_CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    MEAN_PREDICTED_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_MACE_RATE_FIELD_NUMBER: _ClassVar[int]
    group: str
    count: int
    escalated: int
    rate: float
    ci_low: float
    ci_high: float
    sufficient: bool
    outcomes: int
    mace: int
    false_negative_rate: float
    missed: int
    fnr_ci_low: float
    fnr_ci_high: float
    mean_predicted: float
    observed_mace_rate: float
    def __init__(self, group: _Optional[str] = ..., count: _Optional[int] = ..., escalated: _Optional[int] = ..., rate: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., sufficient: _Optional[bool] = ..., outcomes: _Optional[int] = ..., mace: _Optional[int] = ..., false_negative_rate: _Optional[float] = ..., missed: _Optional[int] = ..., fnr_ci_low: _Optional[float] = ..., fnr_ci_high: _Optional[float] = ..., mean_predicted: _Optional[float] = ..., observed_mace_rate: _Optional[float] = ...) -> None: ...

class Counterfactual(_message.Message):
    __slots__ = ("race_ethnicity_invariant", "sex_invariant", "variants")
    RACE_ETHNICITY_INVARIANT_FIELD_NUMBER: _ClassVar[int]
    SEX_INVARIANT_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    race_ethnicity_invariant: bool
    sex_invariant: bool
    variants: _containers.RepeatedCompositeFieldContainer[CounterfactualVariant]
    def __init__(self, race_ethnicity_invariant: _Optional[bool] = ..., sex_invariant: _Optional[bool] = ..., variants: _Optional[_Iterable[_Union[CounterfactualVariant, _Mapping]]] = ...) -> None: ...

class CounterfactualVariant(_message.Message):
    __slots__ = ("race", "ethnicity", "sex", "band", "esi_level", "mace_probability", "actions_changed", "differs")
    RACE_FIELD_NUMBER: _ClassVar[int]
    ETHNICITY_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    BAND_FIELD_NUMBER: _ClassVar[int]
    ESI_LEVEL_FIELD_NUMBER: _ClassVar[int]
    MACE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_CHANGED_FIELD_NUMBER: _ClassVar[int]
    DIFFERS_FIELD_NUMBER: _ClassVar[int]
    race: str
    ethnicity: str
    sex: str
    band: RiskBand
    esi_level: int
    mace_probability: float
    actions_changed: bool
    differs: bool
    def __init__(self, race: _Optional[str] = ..., ethnicity: _Optional[str] = ..., sex: _Optional[str] = ..., band: _Optional[_Union[RiskBand, str]] = ..., esi_level: _Optional[int] = ..., mace_probability: _Optional[float] = ..., actions_changed: _Optional[bool] = ..., differs: _Optional[bool] = ...) -> None: ...

class AssessResult(_message.Message):
    __slots__ = ("request_id", "assessment", "error")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ASSESSMENT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    assessment: Assessment
    error: ErrorDetail
    def __init__(self, request_id: _Optional[str] = ..., assessment: _Optional[_Union[Assessment, _Mapping]] = ..., error: _Optional[_Union[ErrorDetail, _Mapping]] = ...) -> None: ...

class ErrorDetail(_message.Message):
    __slots__ = ("code", "reason", "path", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    reason: str
    path: str
    message: str
    def __init__(self, code: _Optional[str] = ..., reason: _Optional[str] = ..., path: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class OutcomeReport(_message.Message):
    __slots__ = ("audit_id", "encounter_reference", "mace", "occurred_at")
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    ENCOUNTER_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    MACE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    audit_id: str
    encounter_reference: str
    mace: bool
    occurred_at: _timestamp_pb2.Timestamp
    def __init__(self, audit_id: _Optional[str] = ..., encounter_reference: _Optional[str] = ..., mace: _Optional[bool] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OutcomeAck(_message.Message):
    __slots__ = ("audit_id", "duplicate", "audit_ids", "mace", "occurred_at", "reported_at")
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    AUDIT_IDS_FIELD_NUMBER: _ClassVar[int]
    MACE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    audit_id: str
    duplicate: bool
    audit_ids: _containers.RepeatedScalarFieldContainer[str]
    mace: bool
    occurred_at: _timestamp_pb2.Timestamp
    reported_at: _timestamp_pb2.Timestamp
    def __init__(self, audit_id: _Optional[str] = ..., duplicate: _Optional[bool] = ..., audit_ids: _Optional[_Iterable[str]] = ..., mace: _Optional[bool] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FairnessReportRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FairnessReport(_message.Message):
    __slots__ = ("json", "generated_at")
    JSON_FIELD_NUMBER: _ClassVar[int]
    GENERATED_AT_FIELD_NUMBER: _ClassVar[int]
    json: str
    generated_at: _timestamp_pb2.Timestamp
    def __init__(self, json: _Optional[str] = ..., generated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReloadModelRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    def __init__(self, version: _Optional[str] = ...) -> None: ...

class SetShadowModelRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    def __init__(self, version: _Optional[str] = ...) -> None: ...

class ActivateShadowRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetModelStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelStatus(_message.Message):
    __slots__ = ("active", "shadow", "ready", "detail")
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    active: ModelInfo
    shadow: ModelInfo
    ready: bool
    detail: str
    def __init__(self, active: _Optional[_Union[ModelInfo, _Mapping]] = ..., shadow: _Optional[_Union[ModelInfo, _Mapping]] = ..., ready: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...
