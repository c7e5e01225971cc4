"""The one training loop and what it is built from: recipes, the validation split, checkpoints,
layers and augmentation."""
