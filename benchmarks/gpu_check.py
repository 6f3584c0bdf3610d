"""The device check behind benchmarks/gpu_check.sh: prints what it checked and exits 1 on any failure.

Portable network streams (format 1.16, fixed-point-2): hat and ae streams whose network is used (a case without it
fails) are compressed on each device (hat: the same bytes; ae's encoder runs in float32) and decoded on every
device; each decoding must give the compressor's reconstruction bit for bit (checksum verified) and hold the bound;
MB/s both ways per device pair, the 96^3 hat case being the speed check. Before them, the float64 kernels the
arithmetic relies on are compared with NumPy's on each device (srnsz.neural.fixed_point.kernels_off_ieee), and the
golden network streams of tests/golden are decoded on each. Without a GPU the CPU parts run and the CUDA ones are
reported as skipped. Then one timed training step of hat_tiny per device.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import srnsz
from srnsz.examples import wave_field

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden" / "data"
GOLDEN_HAT_FIELD = GOLDEN / "golden_hat_original.npy"


def field(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    axes = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing="ij")
    out = sum(np.sin(2 * np.pi * (k + 2) * a + rng.uniform(0, 6)) for k, a in enumerate(axes))
    return (out + 0.01 * rng.standard_normal(shape)).astype(np.float32)


def cases() -> list[tuple[str, np.ndarray, float, dict]]:
    """(name, field, rel bound, compress options): fields on which the networks are used (on the 96^3 one the default
    hat network gains about 1.66x over interp at rel 1e-2)."""
    return [("hat 40x48x56", np.load(GOLDEN_HAT_FIELD), 1e-3, {"predictor": "hat"}),
            ("ae 16x24x24", field((16, 24, 24), seed=1), 0.1, {"predictor": "ae", "compete_interp": False}),
            ("hat 96^3", wave_field((96, 96, 96), seed=3, waves=8, top=12.0), 1e-2, {"predictor": "hat"})]


def portable(devices: list[str]) -> bool:
    ok = True
    for name, data, rel, options in cases():
        mb = data.nbytes / 1e6
        streams = {}
        for writer in devices:
            t0 = time.perf_counter()
            stream = srnsz.compress(data, rel, "rel", device=writer, **options)
            t1 = time.perf_counter()
            streams[writer] = stream
            info = srnsz.info(stream)
            eb = info.error_bound["abs"]
            params = info.predictor_params
            used = params.get("hat", {}).get("blocks_hat", params.get("blocks", {}).get("ae", 0))
            if not used:
                print(f"{name}: compressed on {writer} without its network (nothing of the device checked)")
                ok = False
            reference = None
            for reader in devices:
                t2 = time.perf_counter()
                try:
                    recon = srnsz.decompress(stream, device=reader)
                except srnsz.SrnszError as exc:
                    print(f"{name}: compressed on {writer}, decoding on {reader} FAILED: {exc}")
                    ok = False
                    continue
                t3 = time.perf_counter()
                same = reference is None or np.array_equal(recon.view(np.uint32), reference.view(np.uint32))
                reference = recon if reference is None else reference
                held = float(np.abs(recon.astype(np.float64) - data).max()) <= eb
                ok &= same and held
                print(f"{name} rel {rel:g}: {info.predictor} (format {info.format_version}, network blocks {used}), "
                      f"compressed on {writer} {mb / (t1 - t0):.2f} MB/s, decoded on {reader} {mb / (t3 - t2):.2f} "
                      f"MB/s: {'the same bits' if same else 'OTHER BITS'}, bound {'held' if held else 'BROKEN'}",
                      flush=True)
        # hat's stream holds nothing the device computes differently; ae's latents come from its encoder in float32
        if options["predictor"] == "hat" and len(set(streams.values())) > 1:
            print(f"{name}: the streams compressed on {' and '.join(streams)} DIFFER")
            ok = False
        elif len(streams) > 1:
            same = len(set(streams.values())) == 1
            print(f"{name}: the streams compressed on {' and '.join(streams)} are {'the same' if same else 'other'} "
                  "bytes")
    return ok


def golden_streams(devices: list[str]) -> bool:
    """The golden network streams decoded on every device against their expected values: fixed-point-2 (format 1.16)
    must give them everywhere; fixed-point-1 (1.9) gives them where its square roots and divisions round like its
    writer's (an x86 CPU), so a difference there is reported, not failed."""
    ok = True
    for name in ("hat_v1_9", "ae_v1_9", "hat_v1_16", "ae_v1_16"):
        stream = (GOLDEN / f"golden_{name}.srnsz").read_bytes()
        expected = np.load(GOLDEN / f"golden_{name}_expected.npy")
        portable_arithmetic = name.endswith("v1_16")
        for device in devices:
            try:
                same = np.array_equal(srnsz.decompress(stream, device=device).view(np.uint32), expected.view(np.uint32))
            except srnsz.SrnszError as exc:
                same, why = False, f" ({exc})"
            else:
                why = ""
            ok &= same or not portable_arithmetic
            verdict = "the expected bits" if same else "OTHER BITS" if portable_arithmetic else "other bits (reported)"
            print(f"golden {name} decoded on {device}: {verdict}{why}", flush=True)
    return ok


def training_step(device: str) -> None:
    import torch

    from srnsz import networks

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

    devices = ["cpu"]
    if torch.cuda.is_available():
        print(f"CUDA: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
        devices.append("cuda")
    else:
        print("CUDA: not available here, the CUDA pairs were skipped (CPU to CPU only)")
    from srnsz.neural.fixed_point import kernels_off_ieee

    ok = True
    for device in devices:  # the IEEE steps the fixed-point arithmetic relies on, against NumPy's
        off = kernels_off_ieee(device)
        print(f"{device}: float64 kernels {'OFF IEEE: ' + ', '.join(off) if off else 'give NumPy bits'}", flush=True)
        ok &= not off
    ok &= golden_streams(devices)
    ok &= portable(devices)
    for device in devices:
        training_step(device)
    print("gpu_check:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
