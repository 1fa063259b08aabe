"""Where demonstrators run: the :class:`~runners.base.Runner` protocol,
:class:`~runners.docker.DockerRunner` (the sandbox; the only module importing
``docker``), :class:`~runners.process.ProcessRunner` (host processes, for
development and trusted reference models only),
:class:`~runners.kubernetes.KubernetesRunner` (pods; the only module
importing ``kubernetes``) and :class:`~runners.fake.FakeRunner` (threads of
this process, for tests);
:mod:`runners.health` is the one health probe.

Import the implementations from their modules, so that using one never
imports another's vendor library.
"""

from runners.base import DemoSpec, RunInfo, Runner, RunState, RunStatus

__all__ = [
    "DemoSpec",
    "RunInfo",
    "RunState",
    "RunStatus",
    "Runner",
]
