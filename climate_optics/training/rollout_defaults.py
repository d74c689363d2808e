"""The forecaster's default rollout tail, without torch (read by the pipeline's settings too).

Every mode trains one-step for the first ``1 - ROLLOUT_TAIL`` of a run's steps, then on rollouts
of depth 1..``ROLLOUT_DEPTH`` (``climate_optics.training.rollout_task``); measured in
docs/dfa_training.md (the 72 h scores of every mode improve).
"""

ROLLOUT_DEPTH = 4
ROLLOUT_TAIL = 0.2
