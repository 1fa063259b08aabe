"""What members read when a demonstrator failed: fixed French text, never what the sandbox printed.

A model's output is hostile and may hold secrets: it goes to
``DemoSession.failure_logs``, which only experts read (``GET …/logs``).
"""

from __future__ import annotations

from domain.errors import ArtifactStoreUnavailable, NotFound, UntrustedModel
from runners.base import RunStatus

TAMPERED = (
    "démonstrateur arrêté : son bac à sable a tenté de rediriger les connexions du service (socket remplacé) ; "
    "signalez-le aux experts de la collectivité propriétaire du modèle"
)
LAUNCH_FAILED = "échec du lancement du bac à sable ; les experts en lisent le détail dans le journal du démonstrateur"
ABANDONED = (
    "lancement abandonné : le service qui le menait s'est arrêté ; relancez le démonstrateur"
)
REPLICA_DIED = (
    "lancement interrompu : le service qui le menait s'est arrêté avant que le démonstrateur "
    "réponde ; relancez le démonstrateur"
)
VANISHED = "démonstrateur disparu pendant l'arrêt du service"
INTERRUPTED = "lancement interrompu par l'arrêt du service : relancez le démonstrateur"
NO_RUNNER = (
    "les démonstrateurs sont désactivés sur ce service (aucun moteur d'exécution : "
    "démarrez Docker ou réglez BIBIA_RUNNER)"
)


def ended(status: RunStatus, memory_mb: int) -> str:
    """Why a sandbox ended, from its runner's status (exit code, memory)."""
    code = status.exit_code
    head = "le démonstrateur s'est arrêté" + (f" (code {code})" if isinstance(code, int) else "")
    if status.oom_killed:
        head += f" : il a dépassé sa limite de mémoire ({memory_mb} Mio) et le bac à sable l'a interrompu"
    elif code == 3:
        head += " : le modèle n'a pas pu être chargé"
    return head + " ; les experts en lisent le détail dans le journal du démonstrateur"


def no_answer(timeout_s: float) -> str:
    return f"le démonstrateur n'a pas répondu en {timeout_s:.0f} s"


def launch_failed(exc: Exception) -> tuple[str, str]:
    """``(message, logs)`` for a launch that raised: our own French message when it is one of ours."""
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (UntrustedModel, NotFound, ArtifactStoreUnavailable)):
        return f"échec du lancement : {exc.message}", detail
    return LAUNCH_FAILED, detail
