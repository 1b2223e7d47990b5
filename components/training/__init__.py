"""The Trainers' module files: the book's scratch convnet and VGG16 transfer learning.

`components.training.scratch.run_fn` and `components.training.vgg16.run_fn` are
the TFX Trainer entry points; everything else here is shared by both.
"""
