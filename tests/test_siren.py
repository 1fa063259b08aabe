"""The SIREN's control key (INSEE: Luhn), in ``registry.refs.check_siren``: API, CLI and web pages."""

from __future__ import annotations

import pytest

from domain.errors import InvalidInput
from registry.refs import LA_POSTE_SIREN, check_siren, siren_key_ok

# Real SIRENs of real collectivités (annuaire-entreprises.data.gouv.fr).
REAL = {
    "244400404": "Nantes Métropole",
    "200046977": "Métropole de Lyon",
    "243500139": "Rennes Métropole",
    "200042174": "Lorient Agglomération",
    "200093201": "Métropole Européenne de Lille",
    "217500016": "Ville de Paris",
    "214401093": "Ville de Nantes",
    "243300316": "Bordeaux Métropole",
    "213300635": "Ville de Bordeaux",
}


@pytest.mark.parametrize("siren", list(REAL), ids=list(REAL.values()))
def test_real_sirens_pass(siren: str) -> None:
    assert siren_key_ok(siren)
    assert check_siren(siren) == siren


@pytest.mark.parametrize("siren", ["244400405", "244400440", "123456789", "987654321", "200046976"])
def test_a_wrong_key_is_refused_in_french(siren: str) -> None:
    assert not siren_key_ok(siren)
    with pytest.raises(InvalidInput) as refused:
        check_siren(siren)
    assert f"SIREN invalide : {siren}" in refused.value.message
    assert "clé de contrôle est fausse" in refused.value.message


def test_la_poste_is_the_documented_exception() -> None:
    assert LA_POSTE_SIREN == "356000000"
    assert siren_key_ok(LA_POSTE_SIREN)
    assert check_siren(LA_POSTE_SIREN) == LA_POSTE_SIREN


def test_every_single_digit_error_is_caught() -> None:
    """Luhn catches every error on a single digit."""
    siren = "244400404"
    for i in range(9):
        for d in "0123456789":
            if d != siren[i]:
                assert not siren_key_ok(siren[:i] + d + siren[i + 1 :]), (i, d)


@pytest.mark.parametrize("bad", ["24440040", "2444004041", "24440040a", "", "244 400 404"])
def test_not_nine_digits_keeps_its_format_message(bad: str) -> None:
    assert not siren_key_ok(bad)
    with pytest.raises(InvalidInput, match="attendu : 9 chiffres"):
        check_siren(bad)
