"""The access policy as a permissions matrix: every predicate of bibia.policy × six kinds of caller.

Read a row as « who may <action> »: one column per caller, ``Y`` allowed,
``n`` refused. Organisation A (id 1) and B (id 2) are collectivités; the
administrator belongs to a third organisation, so an ``Y`` in its column is
the administrator's right, never a membership. The API tests
(tests/test_tiers.py, tests/test_projects_api.py, …) check that the routes
ask these predicates; this table says what they answer.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bibia import policy
from bibia.auth import ANONYMOUS, Caller
from domain.errors import BibiaError, Forbidden, Unauthorized
from registry.tiers import Tier

A, B = 1, 2
SIREN_A, SIREN_B = "213500101", "214401093"


def _caller(tier: Tier, org: str, org_id: int, siren: str) -> Caller:
    return Caller(
        tier=tier,
        organisation=org,
        organisation_id=org_id,
        organisation_siren=siren,
        user=f"{tier.label}-{org}",
        user_id=10 * org_id + int(tier),
        token_prefix="0123abcd",
    )


CALLERS: dict[str, Caller] = {
    "anonyme": ANONYMOUS,
    "membre A": _caller(Tier.RESTRICTED, "a", A, SIREN_A),
    "membre B": _caller(Tier.RESTRICTED, "b", B, SIREN_B),
    "expert A": _caller(Tier.EXPERT, "a", A, SIREN_A),
    "expert B": _caller(Tier.EXPERT, "b", B, SIREN_B),
    "admin": _caller(Tier.ADMIN, "plateforme", 3, "130025265"),
}

Y, n = True, False
Action = Callable[[Caller], bool]

# fmt: off
MATRIX: list[tuple[str, Action, tuple[bool, ...]]] = [
    # action (facts)                   predicate               columns: anonyme, membre A, membre B, expert A, expert B, admin
    ("read public fields",              lambda c: policy.may_read_tier(c, Tier.PUBLIC),     (Y, Y, Y, Y, Y, Y)),
    ("read restricted fields",          lambda c: policy.may_read_tier(c, Tier.RESTRICTED), (n, Y, Y, Y, Y, Y)),
    ("read expert fields",              lambda c: policy.may_read_tier(c, Tier.EXPERT),     (n, n, n, Y, Y, Y)),
    ("read admin fields",               lambda c: policy.may_read_tier(c, Tier.ADMIN),      (n, n, n, n, n, Y)),
    ("administer",                      policy.may_administer,                              (n, n, n, n, n, Y)),
    ("open a web session",              policy.may_open_web_session,                        (n, Y, Y, Y, Y, Y)),
    ("pull artifacts (gateway)",        policy.may_pull_artifacts,                          (n, n, n, Y, Y, Y)),
    ("revoke membre A's session/token", lambda c: policy.may_revoke_own(c, CALLERS["membre A"].user_id), (n, Y, n, n, n, n)),
    ("revoke a credential of no one",   lambda c: policy.may_revoke_own(c, None),           (n, n, n, n, n, n)),
    # demonstrators (one of organisation A)
    ("launch a demonstrator",           policy.may_launch_demo,                             (n, Y, Y, Y, Y, Y)),
    ("list demonstrators",              policy.may_list_demos,                              (n, Y, Y, Y, Y, Y)),
    ("see every organisation's demos",  policy.sees_every_demo,                             (n, n, n, n, n, Y)),
    ("see A's demonstrator",            lambda c: policy.may_see_demo(c, A),                (n, Y, n, Y, n, Y)),
    ("stop A's demonstrator",           lambda c: policy.may_stop_demo(c, A),               (n, Y, n, Y, n, Y)),
    ("read the logs of A's demo",       lambda c: policy.may_read_demo_logs(c, A),          (n, n, n, Y, n, Y)),
    # models
    ("register model versions",         policy.may_register_models,                         (n, n, n, Y, Y, Y)),
    ("write a model of A (new or not)", lambda c: policy.may_write_model(c, SIREN_A),       (n, n, n, Y, n, Y)),
    ("write a model with no owner",     lambda c: policy.may_write_model(c, None),          (n, n, n, Y, Y, Y)),
    ("move an alias of A's model",      lambda c: policy.may_move_alias(c, SIREN_A),        (n, n, n, Y, n, Y)),
    ("move an alias, no owner",         lambda c: policy.may_move_alias(c, None),           (n, n, n, Y, Y, Y)),
    ("give a model another owner",      policy.may_change_model_owner,                      (n, n, n, n, n, Y)),
    ("attach A's model to A's project", lambda c: policy.may_attach_model(SIREN_A, [SIREN_A]), (Y, Y, Y, Y, Y, Y)),
    ("attach B's model to A's project", lambda c: policy.may_attach_model(SIREN_B, [SIREN_A]), (n, n, n, n, n, n)),
    # projects
    ("edit a project owned by A",       lambda c: policy.may_edit_project(c, [SIREN_A]),    (n, n, n, Y, n, Y)),
    ("edit a project owned by A and B", lambda c: policy.may_edit_project(c, [SIREN_A, SIREN_B]), (n, n, n, Y, Y, Y)),
    ("edit a project owned by nobody",  lambda c: policy.may_edit_project(c, []),           (n, n, n, n, n, Y)),
    ("set a project's owners directly", policy.may_set_project_owners,                      (n, n, n, n, n, Y)),
    ("remove A from a project's owners", lambda c: policy.may_remove_project_owner(c, SIREN_A), (n, n, n, Y, n, Y)),
    ("answer invitations",              policy.may_answer_invitations,                      (n, n, n, Y, Y, Y)),
    ("answer A's invitation",           lambda c: policy.may_answer_invitation(c, SIREN_A), (n, n, n, Y, n, Y)),
    # evaluation (an evaluation of organisation A)
    ("register a benchmark",            policy.may_register_benchmark,                      (n, n, n, Y, Y, Y)),
    ("see a public benchmark",          lambda c: policy.may_see_benchmark(c, "public"),    (Y, Y, Y, Y, Y, Y)),
    ("see a hidden-truth benchmark",    lambda c: policy.may_see_benchmark(c, "verite-cachee"), (Y, Y, Y, Y, Y, Y)),
    ("see a members' benchmark",        lambda c: policy.may_see_benchmark(c, "membres"),   (n, Y, Y, Y, Y, Y)),
    ("read a public one's inputs",      lambda c: policy.may_read_benchmark_inputs(c, "public"), (Y, Y, Y, Y, Y, Y)),
    ("read a hidden one's inputs",      lambda c: policy.may_read_benchmark_inputs(c, "verite-cachee"), (n, Y, Y, Y, Y, Y)),
    ("read a public one's truth",       lambda c: policy.may_read_benchmark_truth(c, "public"), (Y, Y, Y, Y, Y, Y)),
    ("read a members' one's truth",     lambda c: policy.may_read_benchmark_truth(c, "membres"), (n, Y, Y, Y, Y, Y)),
    ("read a hidden one's truth",       lambda c: policy.may_read_benchmark_truth(c, "verite-cachee"), (n, n, n, n, n, n)),
    ("submit an evaluation",            policy.may_submit_evaluation,                       (n, Y, Y, Y, Y, Y)),
    ("see A's private evaluation",      lambda c: policy.may_see_evaluation(c, "donnees", A, None), (n, Y, n, Y, n, Y)),
    ("see A's verified, public bench",  lambda c: policy.may_see_evaluation(c, "benchmark", A, "public"), (Y, Y, Y, Y, Y, Y)),
    ("see A's verified, members' bench", lambda c: policy.may_see_evaluation(c, "benchmark", A, "membres"), (n, Y, Y, Y, Y, Y)),
    ("cancel A's evaluation",           lambda c: policy.may_cancel_evaluation(c, A),       (n, Y, n, Y, n, Y)),
    ("publish A's evaluation as report", lambda c: policy.may_publish_report(c, A),         (n, Y, n, Y, n, Y)),
    ("read a report to everyone",       lambda c: policy.may_read_report(c, "public"),      (Y, Y, Y, Y, Y, Y)),
    ("read a report to members",        lambda c: policy.may_read_report(c, "membres"),     (n, Y, Y, Y, Y, Y)),
    ("declare a reuse",                 policy.may_declare_reuse,                           (n, Y, Y, Y, Y, Y)),
    ("set A's model's task and gate",   lambda c: policy.may_configure_evaluation(c, SIREN_A), (n, n, n, Y, n, Y)),
]
# fmt: on


@pytest.mark.parametrize(
    ("kind", "action", "allowed"),
    [
        pytest.param(kind, predicate, allowed, id=f"{name} | {kind}")
        for name, predicate, row in MATRIX
        for kind, allowed in zip(CALLERS, row, strict=True)
    ],
)
def test_permissions_matrix(kind: str, action: Action, allowed: bool) -> None:
    assert action(CALLERS[kind]) is allowed


def test_the_matrix_covers_every_predicate() -> None:
    """A predicate added to bibia.policy without a row here fails."""
    predicates = {
        name
        for name, value in vars(policy).items()
        if callable(value)
        and getattr(value, "__module__", None) == policy.__name__
        and not name.startswith("_")
    } - {"refuse"}
    lambdas = [p for _, p, _ in MATRIX if p.__name__ == "<lambda>"]
    named = {p.__name__ for _, p, _ in MATRIX} | {w for p in lambdas for w in p.__code__.co_names}
    assert predicates <= named


def test_a_member_without_an_organisation_launches_nothing() -> None:
    """Launching (and seeing an organisation's demonstrators) needs an organisation, not just the tier."""
    orphan = Caller(tier=Tier.RESTRICTED, user="x", user_id=99)
    assert not policy.may_launch_demo(orphan)
    assert not policy.may_see_demo(orphan, None)


@pytest.mark.parametrize(
    ("kind", "raised", "text"),
    [
        ("anonyme", Unauthorized, "authentification requise : connectez-vous"),
        ("membre A", Forbidden, "accès refusé : réservé aux experts"),
    ],
)
def test_refuse_fits_the_caller(kind: str, raised: type[BibiaError], text: str) -> None:
    with pytest.raises(raised) as caught:
        policy.refuse(
            CALLERS[kind],
            "accès refusé : réservé aux experts",
            anonymous="authentification requise : connectez-vous",
        )
    assert caught.value.message == text


def test_refuse_gives_an_anonymous_caller_the_same_message_by_default() -> None:
    with pytest.raises(Unauthorized, match="^accès refusé : réservé aux experts$"):
        policy.refuse(ANONYMOUS, "accès refusé : réservé aux experts")
