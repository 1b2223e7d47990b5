"""Intermediate activations (book 5.4.1): what each conv/pool layer outputs for one image."""
from typing import Dict, Optional, Sequence

import numpy as np

from components.explain.model_graph import ModelGraph


def layer_activations(graph: ModelGraph, image: np.ndarray,
                      layer_names: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
    """{layer name: activation [h, w, channels]} for one model input [H, W, 3] in [0, 1],
    every conv and pooling layer by default, in model order."""
    names = list(layer_names or graph.feature_layers)
    outputs = graph.feature_model(names)(image[np.newaxis], training=False)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return {name: np.asarray(out)[0] for name, out in zip(names, outputs)}
