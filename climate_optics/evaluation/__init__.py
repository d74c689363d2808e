"""Evaluation: every skill score of the project is computed here, one way.

- ``metrics`` (the registry and function shortcuts; re-exported as ``climate_optics.metrics``),
  with the metric classes in ``metric_base``, ``deterministic``, ``ensemble`` and ``spectrum``;
- ``weights`` (the one latitude weighting), ``spatial`` (area means over regions), ``regions``;
- ``baselines`` (persistence and climatology);
- ``evaluate_datasets.evaluate`` (forecast and truth Datasets -> the scores Dataset, computed in
  batches by ``scoring``), ``evaluate_stores`` (store to store), ``scores_store`` (writing the
  scores store with its table and figures);
- ``forecast_skill`` and ``downscale_skill``: a model's skill on held-out times of a store.
"""
