"""2D preview pipeline: per-stage median / p95 at 800², against OpenCV's stylization.

The baseline, measured in the same run on the same decoded photos, is ``cv2.stylization``
(OpenCV's edge-preserving NPR filter) on the 800² image alone — no face detection,
alignment, background, QA or encoding. The ratio says how much the whole pipeline costs
relative to that single filter. Also prints the peak RSS of this process (one worker's worth).

    python bench/preview.py [--runs 20] [--size 800]
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import time

import cv2
import numpy as np
from PIL import Image
from skimage import data as skdata

from generation.preview import make_preview, warm_up


def photos() -> list[bytes]:
    """Real photos: the astronaut portrait, mirrored, rotated 8°, and a tighter crop."""
    rgb = skdata.astronaut()
    variants = [rgb, rgb[:, ::-1], np.asarray(Image.fromarray(rgb).rotate(8, resample=Image.BILINEAR)),
                np.ascontiguousarray(rgb[20:440, 60:480])]
    out = []
    for v in variants:
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(v)).save(buf, "JPEG", quality=92)
        out.append(buf.getvalue())
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--size", type=int, default=800)
    args = parser.parse_args()
    warm_up()
    jpegs = photos()
    stages: dict[str, list[float]] = {}
    totals, base = [], []
    for i in range(args.runs):
        data = jpegs[i % len(jpegs)]
        t0 = time.perf_counter()
        result = make_preview(data, size=args.size)
        totals.append((time.perf_counter() - t0) * 1000)
        for stage, ms in result.report["timings_ms"].items():
            stages.setdefault(stage, []).append(ms)
        bgr = cv2.resize(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), (args.size, args.size))
        t0 = time.perf_counter()
        cv2.stylization(bgr, sigma_s=60, sigma_r=0.45)
        base.append((time.perf_counter() - t0) * 1000)
    print(f"{'stage':<12} {'p50 ms':>8} {'p95 ms':>8}")
    for stage, values in stages.items():
        print(f"{stage:<12} {pct(values, 50):8.1f} {pct(values, 95):8.1f}")
    p50, b50 = statistics.median(totals), statistics.median(base)
    print(f"whole pipeline (wall): p50 {p50:.1f} ms, p95 {pct(totals, 95):.1f} ms")
    print(f"baseline cv2.stylization at {args.size}²: p50 {b50:.1f} ms")
    print(f"ratio pipeline/baseline: {p50 / b50:.2f}")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
