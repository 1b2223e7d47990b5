"""Model evaluation: TFMA config, baseline lookup, the Evaluator, the report.

The baseline is the latest model in the serving base path of the same served
name (only blessed models are ever pushed there), found by a small
Python-function component so the pipeline runs unchanged locally and on
open-source KFP v2, which cannot execute TFX's Resolver node.
"""
