"""The tasks bibia knows: the registry, lookup, binding to a model's signature, fitting.

Each module of :data:`_MODULES` defines ``TASK`` (one :class:`Task`) or
``TASKS`` (several); adding a task is adding its module to that tuple.
Specific tasks come first, the generic ones (:mod:`.generic`) last.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from domain.errors import InvalidInput, NotFound
from evaluation.frames import NUMERIC
from evaluation.task import Column, Task
from evaluation.tasks import air, cantine, generic, velo

#: The modules holding tasks, specific ones first (one line per module).
_MODULES: tuple[ModuleType, ...] = (
    cantine,
    velo,
    air,
    generic,
)


def _collect(modules: Sequence[ModuleType]) -> dict[str, Task]:
    found: dict[str, Task] = {}
    for module in modules:
        single = getattr(module, "TASK", None)
        tasks = [single] if single is not None else list(getattr(module, "TASKS", ()))
        for task in tasks:
            if not isinstance(task, Task):
                raise TypeError(f"{module.__name__}: {task!r} is not a Task")
            if task.slug in found:
                raise ValueError(f"{module.__name__}: task slug {task.slug!r} defined twice")
            found[task.slug] = task
    return found


#: Every task by slug, specific ones first.
TASKS: dict[str, Task] = _collect(_MODULES)


def get(slug: str) -> Task:
    """The task called ``slug``.

    Raises:
        NotFound: no such task (the message lists the known ones).
    """
    task = TASKS.get(slug) if isinstance(slug, str) else None
    if task is None:
        shown = str(slug)[:80]
        raise NotFound(f"tâche inconnue : {shown} (tâches : {', '.join(TASKS)})")
    return task


def bind(
    task: Task,
    signature: dict[str, Any] | None,
    truth_column: str | None = None,
    *,
    columns: Sequence[str] | None = None,
) -> Task:
    """A generic task bound to a model's signature (see :func:`generic.bind`); a specific task as is.

    Args:
        task: a task of :data:`TASKS`.
        signature: the model's MLflow signature as plain data
            (``{"inputs": [{"name", "type", "required"?}...], "outputs": [...]}``), or None.
        truth_column: the ground-truth column the user names (generic tasks only).
        columns: the columns of the user's file, to find a default truth column.

    Raises:
        InvalidInput: a truth column that cannot be one.
    """
    return generic.bind(task, signature, truth_column, columns=columns)


#: Column type kinds, for checking a task's column against a signature's.
_KINDS = {
    "double": "number",
    "float": "number",
    "long": "number",
    "integer": "number",
    "boolean": "boolean",
    "string": "text",
    "date": "date",
}
#: (task kind, signature kind) pairs that travel fine (JSON carries dates as text, booleans as 0/1).
_COMPATIBLE = {
    ("date", "text"),
    ("text", "date"),
    ("boolean", "number"),
    ("number", "boolean"),
}


def _compatible(task_type: str, model_type: str) -> bool:
    a, b = _KINDS.get(task_type, "text"), _KINDS.get(model_type, "text")
    return a == b or (a, b) in _COMPATIBLE


def check_signature(task: Task, signature: dict[str, Any] | None) -> list[str]:
    """What keeps a model from being evaluated on ``task``, in French (empty: it fits).

    Checked when the signature names its columns: each required task input is
    among the model's inputs, with a compatible type; each input the model
    requires is one the task gives; each required task output is among the
    model's named outputs (a single unnamed output stands for the first
    required one), with a compatible type. A model without a signature is
    not refused here (its answer is checked when it comes).
    """
    problems: list[str] = []
    model_inputs = {c.name: c for c in generic.signature_columns(signature, "inputs")}
    if model_inputs:
        given = {c.name for c in task.inputs}
        for column in task.inputs:
            mine = model_inputs.get(column.name)
            if mine is None:
                if column.required:
                    problems.append(
                        f"La colonne d'entrée « {column.name} » de la tâche est absente de la "
                        "signature du modèle."
                    )
            elif not _compatible(column.type, mine.type):
                problems.append(_type_problem("d'entrée", column, mine))
        if task.inputs:
            for name, mine in model_inputs.items():
                if mine.required and name not in given:
                    problems.append(
                        f"Le modèle exige la colonne d'entrée « {name} », que la tâche ne fournit "
                        "pas."
                    )
    model_outputs = {c.name: c for c in generic.signature_columns(signature, "outputs")}
    if model_outputs:
        for column in task.outputs:
            mine = model_outputs.get(column.name)
            if mine is None:
                if column.required:
                    problems.append(
                        f"La sortie « {column.name} » de la tâche est absente de la signature du "
                        "modèle."
                    )
            elif not _compatible(column.type, mine.type):
                problems.append(_type_problem("de sortie", column, mine))
    return problems


def _type_problem(role: str, task_column: Column, model_column: Column) -> str:
    return (
        f"La colonne {role} « {task_column.name} » est de type {task_column.type} pour la tâche "
        f"et {model_column.type} dans la signature du modèle."
    )


def candidates(signature: dict[str, Any] | None, card_task: str | None) -> list[Task]:
    """The tasks a model fits, specific ones first (generic ones bound to its signature).

    A specific task fits when the signature names its input columns and
    :func:`check_signature` finds nothing. A generic task fits when its
    ``card_tasks`` hold the card's ``model.task`` (or the card gives none, or
    a task no generic one maps), bound to the signature: regression and
    forecasting need a numeric output (or an unnamed or untyped one),
    forecasting also a date input when the card does not say it forecasts.
    """
    fits: list[Task] = []
    named = bool(generic.signature_columns(signature, "inputs"))
    for task in TASKS.values():
        if not task.generic and named and not check_signature(task, signature):
            fits.append(task)
    mapped = {slug for t in TASKS.values() if t.generic for slug in t.card_tasks}
    for task in TASKS.values():
        if not task.generic:
            continue
        if card_task in mapped and card_task not in task.card_tasks:
            continue
        try:
            bound = bind(task, signature)
        except InvalidInput:
            continue
        if task.slug != "classification" and not _numeric_output(signature):
            continue
        if (
            task.slug == "prevision"
            and card_task not in task.card_tasks
            and not any(c.type == "date" for c in bound.inputs)
        ):
            continue
        fits.append(bound)
    return fits


def _numeric_output(signature: dict[str, Any] | None) -> bool:
    _, kind = generic.output_spec(signature, numeric=True)
    return kind is None or kind in NUMERIC


__all__ = ["TASKS", "bind", "candidates", "check_signature", "get"]
