"""30-day MACE risk model: feature schema, HEART baseline, reference cohort, training,
fairness evaluation, ONNX export and the versioned model registry.

Race and ethnicity are never model inputs; they are audit attributes only
(see ``models.schema.PROTECTED_ATTRIBUTES``).
"""
