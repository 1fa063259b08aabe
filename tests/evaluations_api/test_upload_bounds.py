"""The body guard lets a member send a CSV of ``evaluation_max_upload_mb`` on the evaluation routes only.

Here the general bound (``max_request_bytes``) is 128 KiB and the CSV bound
1 MiB: a 600 KB labelled CSV reaches the evaluation route, the same size
elsewhere is refused by the guard, and past 1 MiB the route refuses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.demos_service.conftest import short_tmp  # noqa: F401 - a fixture
from tests.evaluations_api.conftest import (
    MODEL,
    EvalWorld,
    assert_french_error,
    cantine_csv,
    open_eval_world,
)


@pytest.fixture(scope="module")
def small_world(
    short_tmp: Path,  # noqa: F811 - the fixture imported above
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EvalWorld]:
    with open_eval_world(
        short_tmp, tmp_path_factory.mktemp("bounds"), max_request_bytes=128 * 1024
    ) as world:
        yield world


def test_a_labelled_csv_may_be_larger_than_other_bodies(small_world: EvalWorld) -> None:
    ev = small_world
    big = cantine_csv(weeks=1400)
    assert 400_000 < len(big) < 1024 * 1024
    submitted = ev.client.post(
        "/api/v1/evaluations",
        headers=ev.headers("member"),
        files={"fichier": ("mes-cantines.csv", big, "text/csv")},
        data={"model": f"{MODEL}@production"},
    )
    assert submitted.status_code == 202, submitted.text
    assert submitted.json()["n_rows"] == 14_000
    # the same size on another route is the guard's
    elsewhere = ev.client.post(
        f"/api/v1/models/{MODEL}/reuses",
        headers=ev.headers("member"),
        json={"text": "x" * len(big)},
    )
    assert_french_error(elsewhere, 413)
    # and anonymous callers never get past the smallest bound
    anonymous = ev.client.post(
        "/api/v1/evaluations",
        files={"fichier": ("mes-cantines.csv", big, "text/csv")},
        data={"model": f"{MODEL}@production"},
    )
    assert anonymous.status_code in (401, 413), anonymous.text
    too_big = ev.client.post(
        "/api/v1/evaluations",
        headers=ev.headers("member"),
        files={"fichier": ("mes-cantines.csv", big + big, "text/csv")},
        data={"model": f"{MODEL}@production"},
    )
    assert_french_error(too_big, 413)
