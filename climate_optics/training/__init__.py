"""Training: the generic loop, tasks, checkpoints and the patch sampler.

``train(task, config, out_dir)`` runs any object implementing ``TrainTask`` in the
``backprop``, ``dfa`` or ``optical`` mode.
"""
