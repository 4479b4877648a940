"""Pure derivation rules: ``BundleFacts`` -> feature values. Shared by the fast path and
the R4B reference extractor, so both apply the same clinical rules."""
