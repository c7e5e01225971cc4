"""Neural denoisers and classifiers; importing this package registers them.

Denoisers: seed 000 (vgg16_ae, alexnet_ae, resnet18_ae), seed 001 (conv_ae_fmnist,
cnn_denoiser_fmnist), seed 002 (conv_ae_small, conv_ae_deep), seed 003 (dense_dae,
stacked_dae), seed 004 (bn_conv_ae), and dncnn, unet and average_of (an average of other entries) beyond the seeds.
"""

# Importing a module registers its entries: classifiers, then denoisers.
from models import (  # noqa: F401
    average_of,
    classifiers,
    report_classifiers,
    residual,
    seed000,
    seed001,
    seed002,
    seed003,
    seed004,
    stacked_classifier,
)
