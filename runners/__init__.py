"""Where demonstrators run: the :class:`~runners.base.Runner` protocol,
:class:`~runners.docker.DockerRunner` (the sandbox; the only module importing
``docker``) and :class:`~runners.process.ProcessRunner` (host processes, for
development and trusted reference models only).

Import the implementations from their modules, so that using one never
imports another's vendor library.
"""

from runners.base import (
    DemoConflict,
    DemoMissing,
    DemoSpec,
    RunInfo,
    Runner,
    RunnerError,
    RunnerUnavailable,
    RunState,
    RunStatus,
    UntrustedModel,
)

__all__ = [
    "DemoConflict",
    "DemoMissing",
    "DemoSpec",
    "RunInfo",
    "RunState",
    "RunStatus",
    "Runner",
    "RunnerError",
    "RunnerUnavailable",
    "UntrustedModel",
]
