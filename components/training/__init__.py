"""The Trainers' module files: the book's scratch convnet, VGG16 transfer learning
and the MNIST convnet.

`components.training.scratch.run_fn`, `components.training.vgg16.run_fn` and
`components.training.mnist.run_fn` are the TFX Trainer entry points (listed with
their served names in pipeline/model_registry.py); everything else here is shared.
"""
