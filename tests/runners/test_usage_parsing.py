"""How DockerRunner reads the engine's statistics: cgroup v1, cgroup v2 with and without memory.peak.

The engine here runs cgroup v1 (the contract suite measures it for real);
these cases are the engine's answers as the Docker API documents them for
each cgroup version, and a cgroup v2 tree laid out on disk as the kernel
lays it out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runners.base import Usage
from runners.docker import (
    SOURCE_CGROUP_PEAK,
    SOURCE_LOWER_BOUND,
    SOURCE_STATS,
    _cgroup_peak,
    _usage_from_stats,
)

CID = "1d3f9119721b49fef99335ca00cd18acc62df9a41dcb44c739d9383dd06217d0"


def _v2_tree(
    tmp_path: Path, pid: int, peak: str | None, cgroup: str | None = None
) -> tuple[Path, Path]:
    proc, root = tmp_path / "proc", tmp_path / "cgroup"
    relative = cgroup if cgroup is not None else f"system.slice/docker-{CID}.scope"
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "cgroup").write_text(f"0::/{relative}\n")
    (root / relative).mkdir(parents=True, exist_ok=True)
    if peak is not None:
        (root / relative / "memory.peak").write_text(peak + "\n")
    return proc, root


def test_cgroup_v1_answer_gives_cpu_and_max_usage(tmp_path: Path) -> None:
    stats = {
        "cpu_stats": {"cpu_usage": {"total_usage": 1_500_000_000}},
        "memory_stats": {"usage": 50_000_000, "max_usage": 61_308_928, "limit": 2**33},
    }
    assert _usage_from_stats(stats, CID, None, tmp_path, tmp_path) == Usage(
        1.5, 61_308_928, SOURCE_STATS
    )


def test_cgroup_v2_answer_reads_the_containers_memory_peak(tmp_path: Path) -> None:
    proc, root = _v2_tree(tmp_path, 4242, "98765432")
    stats = {
        "cpu_stats": {"cpu_usage": {"total_usage": 250_000_000}},
        "memory_stats": {"usage": 40_000_000, "stats": {"anon": 1}, "limit": 2**33},
    }
    assert _usage_from_stats(stats, CID, 4242, proc, root) == Usage(
        0.25, 98_765_432, SOURCE_CGROUP_PEAK
    )


def test_cgroup_v2_without_memory_peak_falls_back_to_the_current_usage(tmp_path: Path) -> None:
    proc, root = _v2_tree(tmp_path, 4242, None)  # kernels before 5.19 have no memory.peak
    stats = {
        "cpu_stats": {"cpu_usage": {"total_usage": 3}},
        "memory_stats": {"usage": 40_000_000},
    }
    usage = _usage_from_stats(stats, CID, 4242, proc, root)
    assert usage == Usage(3e-9, 40_000_000, SOURCE_LOWER_BOUND)
    # a remote engine: its processes are not this host's, nothing is read
    assert _usage_from_stats(stats, CID, None, proc, root) == usage


@pytest.mark.parametrize(
    "cgroup",
    ["system.slice/docker-0000.scope", f"docker/{CID}/../../etc", ""],
    ids=["another-container", "dotdot", "root"],
)
def test_a_cgroup_that_is_not_the_containers_is_not_read(tmp_path: Path, cgroup: str) -> None:
    proc, root = _v2_tree(tmp_path, 7, "123", cgroup=cgroup)
    assert _cgroup_peak(7, CID, proc, root) is None


def test_junk_peak_or_missing_process_reads_nothing(tmp_path: Path) -> None:
    proc, root = _v2_tree(tmp_path, 7, "max")
    assert _cgroup_peak(7, CID, proc, root) is None
    assert _cgroup_peak(8, CID, proc, root) is None


@pytest.mark.parametrize(
    "stats",
    [
        {"cpu_stats": {"cpu_usage": {"total_usage": 0}}, "memory_stats": {}},  # a stopped container
        {"cpu_stats": {"cpu_usage": {"total_usage": -5}}, "memory_stats": {"usage": 1}},
        {"cpu_stats": {"cpu_usage": {"total_usage": "12"}}, "memory_stats": {"usage": 1}},
        {"cpu_stats": {"cpu_usage": {"total_usage": True}}, "memory_stats": {"usage": 1}},
        {"cpu_stats": None, "memory_stats": {"usage": 1}},
        [],
        None,
    ],
)
def test_an_answer_without_figures_is_no_usage(tmp_path: Path, stats: object) -> None:
    assert _usage_from_stats(stats, CID, None, tmp_path, tmp_path) is None


def test_usage_refuses_impossible_figures() -> None:
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError):
            Usage(bad, 1, "x")
    with pytest.raises(ValueError):
        Usage(1.0, -1, "x")
    with pytest.raises(ValueError):
        Usage(1.0, True, "x")  # type: ignore[arg-type]
