"""Helpers shared by the bench scripts: summary statistics of repeated timings and plain-text tables."""

from __future__ import annotations

import statistics


def stats(values: list[float] | None) -> dict[str, float] | None:
    """Median, min, max and count of repeated measurements (None when there are none)."""
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def table(header: list[str], rows: list[list[str]]) -> str:
    """A text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(f"{h:<{w}}" if i == 0 else f"{h:>{w}}" for i, (h, w) in enumerate(zip(header, widths))), line]
    for r in rows:
        out.append("  ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


def versions(*dists: str) -> dict[str, str]:
    """Python, machine and the installed versions of ``dists`` ("missing" when absent)."""
    import os
    import platform
    from importlib import metadata

    out = {"python": platform.python_version(), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"}
    for dist in dists:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out


def child_env() -> dict[str, str]:
    """The environment of a worker subprocess: this one, with the repository root on PYTHONPATH."""
    import os
    from pathlib import Path

    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env
