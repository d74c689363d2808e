"""The IO seam between stores, checkpoints and models, shared by training and inference.

- ``channels``: channel names ``variable@level`` (one formatter, one parser) and a store's channels;
- ``windows``: opening canonical stores and reading (time, window) samples (``ZarrWindowSampler``);
- ``checkpoints``: writing and safely loading checkpoints (sha256 verified, never pickle);
- ``models``: rebuilding a trained forecaster or downscaler from its checkpoint.
"""
