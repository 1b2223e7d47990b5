"""What every model's Trainer shares: input functions, augmentation, the dense
head, precision, the training report, export, and resumable training. Each
model's own run_fn is in its folder, components/models/<model>/trainer.py."""
