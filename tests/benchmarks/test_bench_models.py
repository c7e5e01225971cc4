"""Training-step and inference timings of conv_ae_fmnist and DnCNN on a fixed 28x28 batch.

``pytest tests/benchmarks/test_bench_models.py --benchmark-enable`` prints them; images/s is
the batch size over the median time (conv_ae_fmnist: 128 per step, 1024 per inference
call; DnCNN, ~50x the compute per image: 32 and 128). Under
``--benchmark-disable`` each runs once, as a smoke test.
"""

import pytest
import torch

from bench.registry import DENOISERS
from models.engine.denoising import train_step
from models.engine.layers import to_layout

#: name -> (training batch, inference batch)
MODELS = {"conv_ae_fmnist": (128, 1024), "dncnn": (32, 128)}


@pytest.fixture(scope="module")
def batch():
    generator = torch.Generator().manual_seed(0)
    clean = torch.nn.functional.avg_pool2d(torch.rand(1024, 1, 30, 30, generator=generator), 3, 1)
    return (clean + 0.1 * torch.randn(clean.shape, generator=generator)).clamp(0, 1), clean


def network(name):
    torch.manual_seed(0)
    model = DENOISERS.create(name)
    return model.build((1, 28, 28)).to(memory_format=torch.channels_last), model.recipe()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_training_step(benchmark, batch, name):
    noisy, clean = batch
    net, recipe = network(name)
    optimizer = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    net.train()
    size = MODELS[name][0]
    benchmark.group = "training step"
    benchmark.extra_info["images"] = size
    loss = benchmark(train_step, net, optimizer, noisy[:size], clean[:size], loss=recipe.loss)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_inference(benchmark, batch, name):
    noisy, _ = batch
    net, _ = network(name)
    net.eval()
    images = noisy[: MODELS[name][1]]

    def infer():
        with torch.no_grad():
            return net(to_layout(images))

    benchmark.group = "inference"
    benchmark.extra_info["images"] = len(images)
    assert benchmark(infer).shape == images.shape
