"""The velo reference model: data, features, protocol, pyfunc contract, card."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from demos.reference import CHART_FILE, METRICS_FILE, SAMPLE_FILE
from demos.velo import build, protocol
from demos.velo import evaluate as ev
from demos.velo.binning import SKLEARN_FIND, find_binning_thresholds, one_sort_binning
from demos.velo.data import build_calendar, load_daily
from demos.velo.protocol import SEED_TEST
from demos.velo.pyfunc_model import (
    CLIP,
    calendar_features,
    day_features,
    decide,
    run_deviation,
    scale_factor,
    zero_runs,
)
from registry.card import Card
from tests import reference_builds

pytestmark = pytest.mark.timeout(600)


#: The years of every row the design-choice code was handed during the build (see ``built``).
SEEN_WHILE_CHOOSING: set[int] = set()
#: (validation year, last training year) of every fit the design-choice code was handed.
FITS_WHILE_CHOOSING: set[tuple[int, int]] = set()
#: The years of every row the threshold choice of the learned detector (version 4) was handed.
SEEN_WHILE_THRESHOLDING: set[int] = set()


@pytest.fixture(scope="module")
def built(request, tmp_path_factory):
    """The build, with a spy on the design-choice code recording the years of what it receives
    (then kept for the tests that only need a built model: :mod:`tests.reference_builds`)."""

    def spy(choose):
        def wrapped(validation, *args):
            for vy in validation:
                for _, frame in vy.draws:
                    SEEN_WHILE_CHOOSING.update(int(y) for y in frame["jour"].dt.year.unique())
                for fitted in [vy.fitted, *vy.fitted_by.values()]:
                    last = max(max(c["annees"]) for c in fitted.compteurs.values())
                    FITS_WHILE_CHOOSING.add((vy.year, last))
            return choose(validation, *args)

        return wrapped

    def spy_threshold(choose):
        def wrapped(scored):
            for frame in scored:
                SEEN_WHILE_THRESHOLDING.update(int(y) for y in frame["jour"].dt.year.unique())
            return choose(scored)

        return wrapped

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(protocol, "choose_threshold", spy_threshold(protocol.choose_threshold))
        patch.setattr(protocol, "choose_design", spy(protocol.choose_design))
        patch.setattr(protocol, "choose_baseline", spy(protocol.choose_baseline))
        made = build(tmp_path_factory.mktemp("velo") / "model")
    return reference_builds.keep(request, "demos.velo", made)


@pytest.fixture(scope="module")
def model(built):
    return mlflow.pyfunc.load_model(str(built.model_dir))


@pytest.fixture(scope="module")
def daily():
    return load_daily()


@pytest.fixture(scope="module")
def calendrier():
    return build_calendar()


def test_daily_counts_load_from_shipped_file(daily):
    assert daily["jour"].min() == pd.Timestamp("2014-01-01")
    assert daily["jour"].max() == pd.Timestamp("2019-12-31")
    assert "881" in set(daily["compteur"]) and daily["compteur"].nunique() == 18
    assert not daily.duplicated(["compteur", "jour"]).any()
    # Published 2016-03-24 count of counter 745 (first line of the file).
    row = daily[(daily["compteur"] == "745") & (daily["jour"] == "2016-03-24")]
    assert row["comptage"].item() == 98.0


def test_calendar_features_on_known_dates(calendrier):
    days = pd.Series(
        pd.to_datetime(["2019-05-30", "2019-05-31", "2019-07-14", "2019-08-10", "2019-03-12"])
    )
    f = calendar_features(days, calendrier)
    # Ascension Thursday, its bridge Friday, 14 July (Sunday, summer holidays),
    # a summer Saturday, an ordinary school Tuesday.
    assert f["ferie"].tolist() == [1, 0, 1, 0, 0]
    assert f["pont"].tolist() == [0, 1, 0, 0, 0]
    assert f["vac_ete"].tolist() == [0, 0, 1, 1, 0]
    assert f["we_ete"].tolist() == [0, 0, 1, 1, 0]
    assert f["jsem_1"].tolist() == [0, 0, 0, 0, 1]
    assert calendrier.loc["2019-02-15", "vacances"] == 1  # winter holidays, zone B
    assert calendrier.loc["2018-12-25", "vacances"] == 2


def test_zero_runs_need_three_consecutive_days():
    s = pd.Series([5, 0, 0, 7, 0, 0, 0, 3], index=pd.date_range("2019-01-01", periods=8))
    assert zero_runs(s).tolist() == [False, False, False, False, True, True, True, False]


def test_a_slow_drift_is_caught_by_the_five_day_rule_only():
    z = pd.Series([0.2, 3.0, 3.1, 2.8, 3.3, 2.9, -0.1, 2.9, 3.0, np.nan, 3.0, 3.0])
    zl = run_deviation(z, 5)
    # Days 1-5 all deviate by 2.8 or more the same way (day 0 shares a window with them, by
    # 0.2 only); 7-8 and 10-11 are too short.
    assert zl.tolist() == [0.2, 2.8, 2.8, 2.8, 2.8, 2.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert run_deviation(-z, 5).tolist() == (-zl).tolist()
    z3 = np.zeros(len(z))  # no neighbour rule, to isolate the long one
    flags = decide(z, z3, np.zeros(len(z), bool), 5.5, 3.5, zl, 2.5) >= 1
    assert np.flatnonzero(flags).tolist() == [1, 2, 3, 4, 5]
    assert not (decide(z, z3, np.zeros(len(z), bool), 5.5, 3.5) >= 1).any()  # rule off


def test_a_modest_spike_is_caught_by_the_upward_threshold_only():
    z = np.array([4.6, -4.6, -8.5, 3.0, np.nan])
    none = np.zeros(len(z))
    off = np.zeros(len(z), bool)
    flags = decide(z, none, off, 8.0, 4.0, seuil_hausse=4.5) >= 1
    # Above expected, 4.6 counts against 4.5; below, -4.6 does not reach 8.
    assert flags.tolist() == [True, False, True, False, False]
    # Without an upward threshold (version 2), both directions use seuil_jour.
    assert (decide(z, none, off, 8.0, 4.0) >= 1).tolist() == [False, False, True, False, False]


def test_the_noise_scale_widens_on_quieter_days():
    ref = 6.0  # a counter's median expected log1p count
    prof = np.array([ref - 1.0, ref, ref + 1.0, ref - 10.0])
    got = scale_factor(prof, ref, 0.5)
    # A day e times quieter than usual gets a scale sqrt(e) wider (Poisson-like), capped at 3.
    assert got[:3] == pytest.approx([np.exp(0.5), 1.0, np.exp(-0.5)])
    assert got[3] == 3.0
    assert scale_factor(prof, ref, 0.0).tolist() == [1.0] * 4  # one scale per counter


def test_injection_is_seeded_and_only_on_clean_days(daily):
    clean = ev.clean_series(daily[daily["jour"].dt.year == 2019])
    a, b = ev.inject(clean, 7), ev.inject(clean, 7)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == len(clean) and (clean["comptage"] > 0).all()
    assert a.loc[a["type_injection"] == "panne", "comptage"].eq(0).all()
    assert (
        a.groupby("compteur")["evenement"].nunique().sub(1).eq(10).all()
    )  # 10 events + the 0 label


def _clean_toy(n_counters: int = 3, days: int = 200) -> pd.DataFrame:
    jours = pd.date_range("2018-01-01", periods=days)
    return pd.DataFrame(
        {
            "compteur": np.repeat([str(100 + i) for i in range(n_counters)], days),
            "jour": np.tile(jours, n_counters),
            "comptage": 500.0,
        }
    )


def test_family_draw_zero_is_the_original_protocol_and_draws_are_reproducible():
    specs = ev.family(2019, 12)
    assert specs[0] == ev.InjectionSpec(2019) and specs == ev.family(2019, 12)
    assert len({s.seed for s in specs}) == 12 and specs[:5] == ev.family(2019, 5)
    # The mixes come in turn; every draw picks its ranges from the family's options.
    assert [s.melange for s in specs[1:6]] == ["pannes", "derives", "pics", "rares", "equilibre"]
    assert all(s.panne_jours in ev.PANNE_RANGES for s in specs[1:])
    assert all(s.derive_facteur in ev.DERIVE_FACTORS for s in specs[1:])
    assert (
        len({(s.panne_jours, s.derive_jours, s.derive_facteur, s.pic_facteur) for s in specs}) > 6
    )
    clean = _clean_toy()
    a = ev.inject(clean, 2019)
    pd.testing.assert_frame_equal(a, ev.inject(clean, specs[0]))


def test_a_draw_injects_its_mix_within_its_ranges():
    clean = _clean_toy()
    spec = ev.InjectionSpec(
        seed=5,
        events=(("panne", 2), ("derive", 1), ("pic", 3)),
        panne_jours=(5, 6),
        derive_jours=(7, 8),
        derive_facteur=(1.5, 1.6),
        pic_facteur=(2.0, 2.1),
        ecart_jours=3,
        melange="essai",
    )
    out = ev.inject(clean, spec)
    for _, part in out.groupby("compteur"):
        events = part[part["anomalie_injectee"]].groupby("evenement")
        kinds = events["type_injection"].first().value_counts().to_dict()
        assert kinds == {"panne": 2, "derive": 1, "pic": 3}
        for _, ev_rows in events:
            kind, n = ev_rows["type_injection"].iloc[0], len(ev_rows)
            ratio = ev_rows["comptage"] / 500.0
            if kind == "panne":
                assert 5 <= n <= 6 and ratio.eq(0).all()
            elif kind == "derive":
                assert 7 <= n <= 8
                factor = np.exp(np.abs(np.log(ratio)))
                assert ((factor >= 1.49) & (factor <= 1.61)).all()
            else:
                assert n == 1 and 1.99 <= ratio.item() <= 2.11
        # Events are at least ``ecart_jours`` apart.
        starts = events["jour"].min().sort_values()
        ends = events["jour"].max().reindex(starts.index)
        gaps = (starts.iloc[1:].to_numpy() - ends.iloc[:-1].to_numpy()) / np.timedelta64(1, "D")
        assert (gaps > 3).all()


def test_spread_is_mean_std_and_percentiles():
    got = protocol.spread([0.8, 0.9, 1.0])
    assert got["moyenne"] == pytest.approx(0.9) and got["ecart_type"] == pytest.approx(0.0816, 1e-3)
    assert got["p05"] == pytest.approx(0.81) and got["p95"] == pytest.approx(0.99)


def test_the_design_choice_refuses_any_test_year_row(daily, calendrier):
    # The loader of the validation data refuses the test year...
    with pytest.raises(protocol.TestYearRead, match="2019"):
        protocol.validation_years(daily, calendrier, {})
    # ...and so do the choice functions, whatever they are handed.
    toy = ev.inject(_clean_toy(days=60), 1)
    late = toy.assign(jour=toy["jour"] + pd.DateOffset(years=1))
    sneaky = protocol.ValidationYear(2018, None, [(ev.InjectionSpec(1), late)])  # type: ignore[arg-type]
    with pytest.raises(protocol.TestYearRead):
        protocol.choose_baseline([sneaky])
    with pytest.raises(protocol.TestYearRead):
        protocol.choose_design([sneaky], calendrier)


def test_the_choice_read_validation_years_only(built):
    # What the choice functions were actually handed during the build: 2017 and 2018 only.
    assert {2017, 2018} == SEEN_WHILE_CHOOSING
    # Every fit it compared (one per noise-scale exponent) was trained before its validation year.
    assert {(2017, 2016), (2018, 2017)} == FITS_WHILE_CHOOSING
    # The learned detector's threshold too was chosen on 2017-2018 draws only...
    assert {2017, 2018} == SEEN_WHILE_THRESHOLDING
    val = built.extra["validation"]
    assert val["annees"] == [2017, 2018] and max(val["annees_lues"]) < SEED_TEST
    assert val["modele"]["f1"] > val["reference"]["f1"]
    # ...and it became the model because it beat version 3 there (not on 2019).
    assert val["modele"]["f1"] > val["version_3"]["f1"]
    assert built.extra["parametres"]["seuil_proba"] == val["seuil_proba"]
    # ...trained on injected training years with their own seeds, never a validation draw.
    learned = built.extra["apprentissage"]
    assert learned["annees_injectees"] == [2016, 2017, 2018]
    assert not set(learned["graines"]) & {s.seed for y in (2017, 2018) for s in ev.family(y, 12)}


@pytest.mark.parametrize("max_bins", [255, 16])
def test_one_sort_binning_finds_scikit_learns_thresholds(max_bins):
    rng = np.random.default_rng(7)
    n = 5_000
    columns = {
        "continuous": rng.normal(size=n),
        "ties": np.round(rng.normal(size=n), 1),
        "few values": rng.integers(0, 5, size=n).astype(float),
        "constant": np.ones(n),
    }
    columns["missing"] = np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n))
    weights = {
        "version 4's": np.where(rng.random(n) < 0.3, 1.0, 4.0),
        "with zeros": np.where(rng.random(n) < 0.1, 0.0, rng.random(n) * 3),
        "none": None,
    }
    for column in columns.values():
        for weight in weights.values():
            expected = SKLEARN_FIND(column, max_bins, weight)
            assert np.array_equal(find_binning_thresholds(column, max_bins, weight), expected)
    # within the block, the classifier bins with it, and gets the same model
    frame = pd.DataFrame(columns)
    truth = frame["continuous"] + rng.normal(size=n) > 0.5
    weight = weights["version 4's"]
    settings = {**protocol.CLASSIFIER, "max_iter": 20}
    plain = HistGradientBoostingClassifier(**settings).fit(frame, truth, sample_weight=weight)
    with one_sort_binning():
        fast = HistGradientBoostingClassifier(**settings).fit(frame, truth, sample_weight=weight)
    assert np.array_equal(plain.predict_proba(frame), fast.predict_proba(frame))
    from sklearn.ensemble._hist_gradient_boosting import binning as sk_binning

    assert sk_binning._find_binning_thresholds is SKLEARN_FIND  # put back after the block


def _toy_deviations() -> pd.DataFrame:
    """Two counters over 10 days (one day missing for the second), as ``deviations`` returns."""
    days = pd.date_range("2018-03-05", periods=10)  # a Monday
    rows = []
    for cid, shift in (("1", 0.0), ("2", 1.0)):
        for i, day in enumerate(days):
            if cid == "2" and i == 4:
                continue
            rows.append({"compteur": cid, "jour": day, "z": float(i) + shift})
    d = pd.DataFrame(rows)
    d.loc[0, "z"] = 40.0  # beyond the clip
    return d.assign(
        z3=0.0,
        zl=0.0,
        run0=False,
        comptage=100.0,
        contexte_ville=True,
        niveau=0.5,
        sigma=0.25,
        g=0.0,
        prof=5.0,
    )


def test_day_features_on_a_small_case():
    d = _toy_deviations()
    params = {"seuil_jour": 8.0, "seuil_serie": 4.0, "seuil_hausse": 4.5}
    f = day_features(d, {"1": {"ref_log": 4.0}, "2": {"ref_log": 5.0}}, params)
    assert f.index.equals(d.index)
    one, two = d["compteur"] == "1", d["compteur"] == "2"
    z1 = [CLIP, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert f.loc[one, "z"].tolist() == z1
    assert f.loc[one, "niv"].tolist() == [2.0] * 10  # level 0.5 over noise 0.25
    assert f.loc[one, "z0"].iloc[1] == 3.0 and f.loc[one, "z0"].iloc[0] == CLIP
    assert f.loc[one, "rel"].tolist() == [1.0] * 10 and f.loc[two, "rel"].tolist() == [0.0] * 9
    assert f.loc[one, "wd"].tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 1, 2]
    # Version 3's score (on the raw deviation, capped at 5): day i scores i / 4.5.
    assert f.loc[one, "s3"].iloc[0] == 5.0 and f.loc[one, "s3"].iloc[3] == pytest.approx(3 / 4.5)
    # Centred 3-day mean, the 7 days up to today, the 7 days from today, the neighbours.
    assert f.loc[one, "z_m3"].iloc[2] == pytest.approx(2.0)
    assert f.loc[one, "z_b7"].iloc[9] == pytest.approx(np.mean(z1[3:10]))
    assert f.loc[one, "z_f7"].iloc[0] == pytest.approx(np.mean(z1[0:7]))
    assert f.loc[one, "z_prev"].iloc[1] == CLIP and np.isnan(f.loc[one, "z_prev"].iloc[0])
    # The second counter misses day 4: its windows run over calendar days, around the hole.
    z2 = f.loc[two].set_index(d.loc[two, "jour"])
    assert np.isnan(z2.loc["2018-03-08", "z_next"])
    assert z2.loc["2018-03-10", "z_m3"] == pytest.approx(6.5)  # days 5 and 6 (4 missing)
    # Same-day comparison with the other counters of the frame: median, difference, rank.
    day2 = d["jour"] == pd.Timestamp("2018-03-07")
    assert f.loc[day2, "c_z"].tolist() == [2.5, 2.5]
    assert f.loc[day2 & one, "d_z"].item() == -0.5 and f.loc[day2 & two, "rank_z"].item() == 1.0
    day4 = d["jour"] == pd.Timestamp("2018-03-09")
    assert f.loc[day4, "c_z"].item() == 4.0 and f.loc[day4, "d_z"].item() == 0.0


def test_the_threshold_choice_takes_the_best_mean_f1_on_validation_only():
    days = pd.date_range("2018-01-01", periods=6)
    truth = np.array([True, True, False, False, False, False])
    draws = [
        pd.DataFrame({"jour": days, "anomalie_injectee": truth, "proba": p})
        for p in ([0.95, 0.97, 0.85, 0.84, 0.83, 0.0], [0.99, 0.83, 0.6, 0.2, 0.1, 0.0])
    ]
    seuil, figures = protocol.choose_threshold(draws)
    # From 0.86 the first draw is perfect and the second misses its 0.83: mean F1 (1 + 2/3) / 2;
    # below, the first draw's three false alarms cost more (0.80-0.82: (4/7 + 1) / 2).
    assert seuil == 0.86 and figures["f1"] == pytest.approx((1 + 2 / 3) / 2)
    assert figures["precision"] == 1.0 and figures["recall"] == pytest.approx(0.75)
    late = draws[0].assign(jour=days + pd.DateOffset(years=1))
    with pytest.raises(protocol.TestYearRead, match="2019"):
        protocol.choose_threshold([draws[0], late])


def test_baseline_flags_a_spike_and_a_zero_run():
    days = pd.date_range("2019-01-01", periods=120)
    counts = 500 + 50 * (days.dayofweek < 5) + np.random.default_rng(0).integers(-20, 20, len(days))
    df = pd.DataFrame({"compteur": "1", "jour": days, "comptage": counts.astype(float)})
    df.loc[60, "comptage"] = 5000.0
    df.loc[90:92, "comptage"] = 0.0
    flags = ev.baseline_flags(df, semaines=4, seuil=3.5)
    assert flags[60] and flags[90:93].all()
    assert flags.sum() <= 6


def test_pyfunc_contract_on_sample(built, model):
    sample = pd.read_csv(built.model_dir / SAMPLE_FILE)
    assert list(sample.columns) == ["compteur", "jour", "comptage", "anomalie_injectee"]
    assert 2 <= sample["compteur"].nunique() <= 3 and sample["anomalie_injectee"].any()
    out = model.predict(sample[["compteur", "jour", "comptage"]])
    assert list(out.columns) == ["attendu", "borne_basse", "borne_haute", "anomalie", "score"]
    assert len(out) == len(sample)
    assert (out["borne_basse"] <= out["attendu"]).all() and (
        out["attendu"] <= out["borne_haute"]
    ).all()
    assert out["anomalie"].dtype == bool
    assert (out["anomalie"] == (out["score"] >= 1)).all()
    caught = out.loc[sample["anomalie_injectee"], "anomalie"].mean()
    assert caught > 0.8


def test_single_row_uses_learned_profile(model):
    row = pd.DataFrame(
        {"compteur": [881, 881], "jour": ["2019-05-02", "2019-05-03"], "comptage": [3000, 0]}
    )
    out = model.predict(row)
    assert 1000 < out["attendu"].iloc[0] < 6000
    assert not out["anomalie"].iloc[0] and out["anomalie"].iloc[1]


def test_unknown_counter_gets_a_french_error(model):
    bad = pd.DataFrame({"compteur": [1234], "jour": ["2019-05-02"], "comptage": [10]})
    with pytest.raises(
        Exception, match="Compteur\\(s\\) inconnu\\(s\\) : 1234.*Identifiant du compteur.*881"
    ):
        model.predict(bad)


def test_missing_column_and_bad_date_are_refused(built):
    # Without the MLflow signature layer, the model's own checks answer.
    from demos.velo.pyfunc_model import ErreurEntree, validate_input

    compteurs = json.loads((built.model_dir / "artifacts" / "etat.json").read_text())["compteurs"]
    with pytest.raises(ErreurEntree, match="Colonne\\(s\\) manquante\\(s\\) : comptage"):
        validate_input(pd.DataFrame({"compteur": [881], "jour": ["2019-05-02"]}), compteurs)
    with pytest.raises(ErreurEntree, match="Date invalide"):
        validate_input(
            pd.DataFrame({"compteur": [881], "jour": ["02/05/2019"], "comptage": [3]}), compteurs
        )
    with pytest.raises(ErreurEntree, match="double"):
        validate_input(
            pd.DataFrame({"compteur": [881, 881], "jour": ["2019-05-02"] * 2, "comptage": [3, 4]}),
            compteurs,
        )


def test_metrics_file_holds_the_evaluation(built, daily):
    saved = json.loads((built.model_dir / METRICS_FILE).read_text())
    assert saved == {"model": built.metrics, "baseline": built.baseline_metrics}
    family = {f"{k}_{stat}" for k in ("precision", "recall", "f1") for stat in protocol.SPREAD}
    keys = {"precision", "recall", "f1", "accord_drapeau_nantes", "n_anomalies_injectees"}
    assert set(saved["model"]) == keys | family == set(saved["baseline"])
    m = saved["model"]
    assert m["f1"] == pytest.approx(
        2 * m["precision"] * m["recall"] / (m["precision"] + m["recall"])
    )
    # Recompute draw 0 (the reference benchmark) and the baseline's score independently.
    test = ev.inject(ev.clean_series(daily[daily["jour"].dt.year == SEED_TEST]), SEED_TEST)
    assert m["n_anomalies_injectees"] == test["anomalie_injectee"].sum()
    flags = ev.baseline_flags(test, **built.extra["parametres_reference"])
    assert saved["baseline"]["f1"] == pytest.approx(ev.prf(test["anomalie_injectee"], flags)["f1"])
    assert (built.model_dir / CHART_FILE).stat().st_size > 10_000


def test_family_figures_come_from_the_protocol_run(built, daily):
    """The figures over the family are those of its draws, recomputed here for the baseline."""
    draws = built.extra["tirages_test"]
    assert len(draws) == built.extra["n_tirages_test"] == protocol.N_DRAWS_TEST
    for who, saved in (("modele", built.metrics), ("reference", built.baseline_metrics)):
        for key in ("precision", "recall", "f1"):
            values = [d[who][key] for d in draws]
            assert saved[f"{key}_moyenne"] == pytest.approx(np.mean(values))
            assert saved[f"{key}_ecart_type"] == pytest.approx(np.std(values))
    clean = ev.clean_series(daily[daily["jour"].dt.year == SEED_TEST])
    for spec, draw in list(zip(ev.family(SEED_TEST, len(draws)), draws, strict=True))[1:4]:
        test = ev.inject(clean, spec)
        flags = ev.baseline_flags(test, **built.extra["parametres_reference"])
        assert draw["reference"] == pytest.approx(ev.prf(test["anomalie_injectee"], flags))
    m, b = built.metrics, built.baseline_metrics
    # The targets, on average over the family of 2019 draws.
    assert m["f1_moyenne"] - b["f1_moyenne"] >= 0.10
    assert m["precision_moyenne"] > b["precision_moyenne"]
    assert m["recall_moyenne"] > b["recall_moyenne"]
    assert m["f1"] > b["f1"]


def test_card_validates(built):
    card = Card.model_validate(built.card)
    assert card.model.task.value == "detection-anomalies"
    assert {mt.name for mt in card.model.evaluation.metrics} >= {"precision", "recall", "f1"}
    named = {mt.name: mt for mt in card.model.evaluation.metrics}
    assert named["f1"].value == round(built.metrics["f1"], 4)
    assert named["f1"].baseline == round(built.baseline_metrics["f1"], 4)
    assert built.name == built.project == "velo-anomalies-nantes" and built.alias == "production"
