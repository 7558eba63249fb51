"""Scenario files: the baseline validates and cites every number; variants merge; errors name file, key, rule."""

import tomllib

import pytest

from sim import scenario as sc
from sim.errors import ScenarioError

from .conftest import DRAMMEN, write_variant


def test_drammen_validates(drammen):
    assert drammen.name == "drammen"
    assert drammen.period.programme_start == "2011-06" and drammen.period.end == "2030-12"


def test_every_number_in_drammen_has_a_source():
    data = tomllib.loads(DRAMMEN.read_text(encoding="utf-8"))
    sources = data.get("sources", {})
    skip = ("sources", "extends", "name", "description", "calibration")  # labels and priors, not figures
    leaves = [path for path, _ in sc.iter_leaves({k: v for k, v in data.items() if k not in skip})]
    missing = [p for p in leaves if p not in sources]
    assert not missing, f"keys without a source or 'assumption:' entry: {missing}"
    for key, text in sources.items():
        assert text.strip(), key
        assert text.startswith("assumption") or len(text) > 12, f"{key}: give a citation or 'assumption: why'"


def test_extends_merges_key_by_key(tmp_path, drammen):
    path = write_variant(tmp_path, '[frame]\nyearly_nok = {2010 = 1_000_000}\n[programme]\nadvisers = 5\n')
    s = sc.load(path).scenario
    assert s.name == "variant"
    assert s.frame.yearly_nok == {"2010": 1_000_000}  # dated table replaced whole
    assert s.programme.advisers == 5
    assert s.frame.rounds == drammen.frame.rounds  # untouched keys come from the base
    assert s.programme.dropout_probability == drammen.programme.dropout_probability


def _error(tmp_path, body):
    path = write_variant(tmp_path, body)
    with pytest.raises(ScenarioError) as info:
        sc.load(path)
    return str(info.value), path


@pytest.mark.parametrize("body, key, rule", [
    ("[frame]\npatiense_months = 3\n", "frame.patiense_months", "did you mean 'patience_months'"),
    ("[frame]\nyearly_nok = -5\n", "frame.yearly_nok", "at least 0"),
    ("[frame]\nyearly_nok = {2010 = 5, 2012 = -1}\n", "frame.yearly_nok", "at least 0"),
    ("[programme]\ndropout_probability = 1.5\n", "programme.dropout_probability", "at most 1"),
    ("[period]\nend = \"2009-12\"\n", "period", "out of order"),
    ("[market]\nprice_index = {2012 = 1.0, 2011 = 1.1}\n", "market.price_index", "out of order"),
    ("[frame]\nrounds = [{month = 9, share = 0.5}, {month = 2, share = 0.5}]\n", "frame", "out of order"),
    ("[frame]\nrounds = [{month = 2, share = 0.5}]\n", "frame", "sum to 1"),
    ("[market]\nhusbanken_rate_pct = {2012 = 2.0}\n", "market.husbanken_rate_pct", "period start"),
    ("[stock]\ninitial_units = \"many\"\n", "stock.initial_units", "integer"),
    ("colour = 1\n", "colour", "unknown key"),
])
def test_errors_name_file_key_and_rule(tmp_path, body, key, rule):
    msg, path = _error(tmp_path, body)
    assert str(path) in msg and key in msg and rule in msg, msg
    assert "Traceback" not in msg


def test_malformed_missing_and_circular(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\n[stock\n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        sc.load(bad)
    with pytest.raises(ScenarioError, match="file not found"):
        sc.load(tmp_path / "nope.toml")
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text('extends = "b.toml"\n')
    b.write_text('extends = "a.toml"\n')
    with pytest.raises(ScenarioError, match="circle"):
        sc.load(a)
    orphan = tmp_path / "orphan.toml"
    orphan.write_text('extends = "missing.toml"\n')
    with pytest.raises(ScenarioError, match="base file .*missing.toml not found"):
        sc.load(orphan)


def test_error_in_base_names_the_base_file(tmp_path):
    base = tmp_path / "base.toml"
    text = DRAMMEN.read_text().replace("dropout_probability = 0.", "dropout_probability = 3.")
    base.write_text("\n".join(line for line in text.splitlines() if not line.startswith("fitted =")))
    variant = tmp_path / "v.toml"
    variant.write_text('extends = "base.toml"\n[programme]\nadvisers = 3\n')
    with pytest.raises(ScenarioError) as info:
        sc.load(variant)
    assert str(base) in str(info.value) and "programme.dropout_probability" in str(info.value)


def test_with_overrides(drammen):
    s = sc.with_overrides(drammen, {"frame.yearly_nok": 1e8, "frame.priority": "lte_first"})
    assert s.frame.yearly_nok == 1e8 and s.frame.priority == "lte_first"
    with pytest.raises(ScenarioError, match="did you mean"):
        sc.with_overrides(drammen, {"frame.yearly_nokk": 1})
    with pytest.raises(ScenarioError, match="at most 1"):
        sc.with_overrides(drammen, {"frame.earmark_lte_share": 2})


def test_schema_kinds():
    assert sc.field_kind("frame.yearly_nok") == "policy"
    assert sc.field_kind("market.price_index") == "exogenous"
    assert sc.field_kind("programme.screening_rate_per_year") == "behavioural"
    assert sc.field_kind("nope.nope") is None


def test_a_variant_value_wins_over_the_base_fit(tmp_path, drammen):
    path = write_variant(tmp_path, "[programme]\nbuy_own_share = 0.11\n")
    loaded = sc.load(path)
    assert loaded.scenario.programme.buy_own_share == 0.11  # the variant's own value, not the fit's
    assert "programme.buy_own_share" not in loaded.fit["applied"]
    assert all("programme.buy_own_share" not in d for d in loaded.posterior_draws(5, 1))
    assert loaded.scenario.programme.dropout_probability == drammen.programme.dropout_probability  # still fitted
