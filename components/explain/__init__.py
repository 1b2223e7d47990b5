"""Visualising what the convnets learn (Deep Learning with Python, section 5.4).

Intermediate activations, filter patterns by gradient ascent in input space and
Grad-CAM class-activation maps, for the pipeline's trained Keras models: a
library (this package), the `catsdogs explain` command (cli.py) and a TFX
component that writes an HTML gallery after each Trainer (component.py).
"""
