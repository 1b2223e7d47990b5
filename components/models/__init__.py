"""The models the pipeline trains, one folder each, everything about a model in it:

    <model>/__init__.py   SPEC, its ModelSpec (spec.py): key, served name, defaults,
                          presets, quick budgets, thresholds, image shape, run_fn's path
    <model>/hparams.py    its hyper-parameter dataclass (a training.hparams.CustomConfig)
    <model>/network.py    the Keras model
    <model>/trainer.py    run_fn, the TFX Trainer's entry point

__init__.py and hparams.py import no TensorFlow. pipeline/model_registry.py lists
the SPECs; the shared training machinery is in components/training/.
"""
