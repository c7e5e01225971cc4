"""Training and inference speed of the neural denoisers on this machine.

``python -m models.speed [NAME ...] [--threads N] [--device cpu|cuda]`` prints, per model at
its default parameters and ``config='ours'`` batch size on 1x28x28 images: parameters,
median training-step time as images/s and as seconds per 60,000-image epoch, and inference
images/s over 512 images in ``denoise``'s chunks. On CPU it also prints the process CPU time per step, which a
busy machine inflates much less than wall time; the load average is printed for context.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from bench.registry import DENOISERS
from models.base import DENOISE_CHUNK
from models.training import to_layout, train_step, tune_cpu_allocator

__all__ = ["measure"]


def _median_seconds(fn, repeats: int, device: torch.device) -> tuple[float, float]:
    """Median wall and process-CPU seconds of ``fn()`` after one warm-up call."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def measure(name: str, *, device: str = "cpu", repeats: int = 5, epoch_images: int = 60_000) -> dict:
    """Speed record of denoiser ``name`` (default parameters) on 1x28x28 images."""
    dev = torch.device(device)
    model = DENOISERS.create(name)
    batch = model.recipe().batch_size
    torch.manual_seed(0)
    net = model.build((1, 28, 28)).to(dev).to(memory_format=torch.channels_last)
    clean = torch.rand(max(batch, 512), 1, 28, 28, device=dev)
    noisy = (clean + 0.1 * torch.randn_like(clean)).clamp(0, 1)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    net.train()
    step_wall, step_cpu = _median_seconds(
        lambda: train_step(net, optimizer, noisy[:batch], clean[:batch]), repeats, dev
    )
    net.eval()

    chunk = DENOISE_CHUNK.get(dev.type, 256)

    def infer() -> None:
        with torch.no_grad():
            for images in noisy[:512].split(chunk):
                net(to_layout(images))

    infer_wall, _ = _median_seconds(infer, repeats, dev)
    return {
        "name": name,
        "parameters": sum(p.numel() for p in net.parameters()),
        "batch": batch,
        "train_images_per_s": batch / step_wall,
        "epoch_seconds": epoch_images / batch * step_wall,
        "epoch_cpu_seconds": epoch_images / batch * step_cpu,
        "infer_images_per_s": 512 / infer_wall,
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
