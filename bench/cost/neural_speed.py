"""Training and inference speed of the neural denoisers on this machine.

``python -m bench.cost.neural_speed [NAME ...] [--threads N] [--device cpu|cuda]`` prints, per model at
its default parameters and ``config='ours'`` batch size on 1x28x28 images: parameters,
median training-step time as images/s and as seconds per 60,000-image epoch, and inference
images/s over 512 images in ``denoise``'s chunks. On CPU it also prints the process CPU time per step, which a
busy machine inflates much less than wall time; the load average is printed for context.
When ``conv_ae_fmnist`` is measured, the same process also times ``StockConvAE``, the same
network written with stock layers in the default layout, and prints our speed as a ratio to it.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.cost import timing
from bench.device import tune_cpu_allocator
from bench.registry import DENOISERS
from models.engine.denoising import train_step
from models.engine.inference import DENOISE_CHUNK
from models.engine.layers import to_layout

__all__ = ["StockConvAE", "measure"]


class StockConvAE(nn.Module):
    """``conv_ae_fmnist`` on 28x28 written the plain way: ``nn.Conv2d``, nearest upsampling,
    contiguous NCHW. Same state dict and same function; the reference our speed is a ratio to."""

    def __init__(self) -> None:
        super().__init__()
        self.enc1, self.enc2 = nn.Conv2d(1, 64, 3, padding=1), nn.Conv2d(64, 32, 3, padding=1)
        self.enc3, self.mid = nn.Conv2d(32, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1)
        self.dec1, self.dec2 = nn.Conv2d(16, 32, 3, padding=1), nn.Conv2d(32, 64, 3)
        self.out = nn.Conv2d(64, 1, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        for conv in (self.enc1, self.enc2, self.enc3):
            x = F.relu(F.max_pool2d(conv(x), 2, ceil_mode=True))
        x = F.relu(self.mid(x))
        for conv in (self.dec1, self.dec2):
            x = F.relu(conv(F.interpolate(x, scale_factor=2.0, mode="nearest")))
        return self.out(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _time_net(net: nn.Module, batch: int, dev: torch.device, repeats: int, *, layout) -> dict:
    """Median training-step and inference speed of ``net`` on random 1x28x28 images."""
    clean = torch.rand(max(batch, 512), 1, 28, 28, device=dev)
    noisy = (clean + 0.1 * torch.randn_like(clean)).clamp(0, 1)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    net.train()
    step = timing.median_pass(lambda: train_step(net, optimizer, layout(noisy[:batch]), clean[:batch]), repeats, dev)
    net.eval()
    chunk = DENOISE_CHUNK.get(dev.type, 256)

    def infer() -> None:
        with torch.no_grad():
            for images in noisy[:512].split(chunk):
                net(layout(images))

    infer_wall = timing.median_pass(infer, repeats, dev).wall
    return {"step_wall": step.wall, "step_cpu": step.cpu, "infer_images_per_s": 512 / infer_wall}


def measure(name: str, *, device: str = "cpu", repeats: int = 5, epoch_images: int = 60_000) -> dict:
    """Speed record of denoiser ``name`` (default parameters) on 1x28x28 images."""
    dev = torch.device(device)
    model = DENOISERS.create(name)
    batch = model.recipe().batch_size
    torch.manual_seed(0)
    net = model.build((1, 28, 28)).to(dev).to(memory_format=torch.channels_last)
    t = _time_net(net, batch, dev, repeats, layout=to_layout)
    return {
        "name": name,
        "parameters": sum(p.numel() for p in net.parameters()),
        "batch": batch,
        "train_images_per_s": batch / t["step_wall"],
        "epoch_seconds": epoch_images / batch * t["step_wall"],
        "epoch_cpu_seconds": epoch_images / batch * t["step_cpu"],
        "infer_images_per_s": t["infer_images_per_s"],
    }


def stock_reference(record: dict, *, device: str = "cpu", repeats: int = 5) -> dict:
    """``record`` (conv_ae_fmnist's) as ratios to ``StockConvAE`` timed now, at its batch size."""
    dev = torch.device(device)
    torch.manual_seed(0)
    t = _time_net(StockConvAE().to(dev), record["batch"], dev, repeats, layout=lambda x: x)
    return {
        "train_ratio": record["train_images_per_s"] * t["step_wall"] / record["batch"],
        "infer_ratio": record["infer_images_per_s"] / t["infer_images_per_s"],
        "stock_epoch_seconds": 60_000 / record["batch"] * t["step_wall"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="denoisers (default: every neural one)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--default-malloc", action="store_true", help="skip tune_cpu_allocator()")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    tuned = not args.default_malloc and tune_cpu_allocator()
    names = args.names or [n for n in DENOISERS.names() if DENOISERS.entry(n).factory.__module__.startswith("models.")]
    print(
        f"device {args.device}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, malloc tuned: {tuned}"
    )
    print(
        f"{'model':<20} {'params':>11} {'batch':>5} {'train img/s':>11} {'epoch s':>8} {'epoch cpu-s':>11} {'infer img/s':>11}"
    )
    for name in names:
        r = measure(name, device=args.device, repeats=args.repeats)
        print(
            f"{name:<20} {r['parameters']:>11,} {r['batch']:>5} {r['train_images_per_s']:>11,.0f} {r['epoch_seconds']:>8,.0f} "
            f"{r['epoch_cpu_seconds']:>11,.0f} {r['infer_images_per_s']:>11,.0f}",
            flush=True,
        )
        if name == "conv_ae_fmnist":
            ref = stock_reference(r, device=args.device, repeats=args.repeats)
            print(
                f"  vs the stock-layer port timed now (StockConvAE, epoch {ref['stock_epoch_seconds']:,.0f} s): "
                f"training x{ref['train_ratio']:.2f}, inference x{ref['infer_ratio']:.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
