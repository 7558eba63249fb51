"""Scenario files: the baseline validates and cites every number; variants merge; errors name file, key, rule."""

import re
import tomllib

import pytest

from sim import scenario as sc
from sim.errors import ScenarioError

from .conftest import DRAMMEN, copy_drammen, write_variant

# Top-level keys that are labels or calibration priors, not figures of the municipality.
NOT_FIGURES = ("sources", "extends", "name", "description", "calibration")
# A citation names where it comes from: a reference in brackets, DOMAIN.md, or a link.
CITATION = re.compile(r"\(.+\)|DOMAIN|https?://")


def source_problems(data: dict) -> list[str]:
    """Every leaf of a scenario dict needs a [sources] entry: a citation, or text beginning 'assumption'."""
    sources = data.get("sources", {})
    leaves = [path for path, _ in sc.iter_leaves({k: v for k, v in data.items() if k not in NOT_FIGURES})]
    problems = [f"{p}: no [sources] entry" for p in leaves if p not in sources]
    for key, text in sources.items():
        assumption = re.match(r"\s*assumption\b\s*(:\s*(\S.*))?", text, re.IGNORECASE | re.DOTALL)
        if assumption and not assumption.group(2):
            problems.append(f"{key}: {text!r} is an assumption without its reason ('assumption: why')")
        elif not (assumption or CITATION.search(text)):
            problems.append(f"{key}: {text!r} is neither a citation nor 'assumption: why'")
    return problems


# ---------------------------------------------------------------------------------------------- the baseline
def test_drammen_validates(drammen):
    assert drammen.name == "drammen"
    assert (drammen.period.start, drammen.period.programme_start, drammen.period.end) == ("2010-01", "2011-06", "2030-12")
    assert drammen.period.n_months == 21 * 12
    assert [(r.month, r.share) for r in drammen.frame.rounds] == [(2, 0.6), (9, 0.4)]


def test_every_number_in_drammen_has_a_source():
    data = tomllib.loads(DRAMMEN.read_text(encoding="utf-8"))
    problems = source_problems(data)
    assert not problems, "give each number a citation or 'assumption: why' in [sources]:\n" + "\n".join(problems)
    # and every [sources] entry names a real key (a typo there would hide a missing source)
    known = set(sc.leaf_paths(sc.Scenario))
    assert not [k for k in data["sources"] if k not in known]
    # "DOMAIN" in a source is the project's own notes, next to the scenario
    assert (DRAMMEN.parent / "DOMAIN.md").is_file()


def test_the_source_check_catches_a_number_without_a_source():
    data = tomllib.loads(DRAMMEN.read_text(encoding="utf-8"))
    data["stock"]["new_figure"] = 12
    data["sources"]["stock.family_share"] = "my guess"
    data["sources"]["stock.dedicated_share"] = "assumption"
    data["sources"]["stock.sellable_share"] = "Assumption:  "
    del data["sources"]["frame.patience_months"]
    problems = source_problems(data)
    assert any(p.startswith("stock.dedicated_share: 'assumption' is an assumption without its reason") for p in problems)
    assert any(p.startswith("stock.sellable_share: 'Assumption:  ' is an assumption without") for p in problems)
    assert any(p.startswith("stock.new_figure: no [sources]") for p in problems)
    assert any(p.startswith("frame.patience_months: no [sources]") for p in problems)
    assert any(p.startswith("stock.family_share: 'my guess'") for p in problems)


def test_every_schema_key_says_its_unit_meaning_and_kind():
    for path in sc.leaf_paths(sc.Scenario):
        info = sc.field_info(path)
        extra = info.json_schema_extra or {}
        assert info.description and extra.get("unit"), path
        assert sc.field_kind(path) in sc.KINDS, path


def test_schema_kinds():
    assert sc.field_kind("frame.yearly_nok") == "policy"
    assert sc.field_kind("market.price_index") == "exogenous"
    assert sc.field_kind("programme.screening_rate_per_year") == "behavioural"
    assert sc.field_kind("stock.initial_units") == "fact"
    assert sc.field_kind("nope.nope") is None


# ---------------------------------------------------------------------------------------------- extends
def test_extends_merges_key_by_key(tmp_path, drammen):
    base = copy_drammen(tmp_path)
    path = write_variant(tmp_path, '[frame]\nyearly_nok = {2010 = 1_000_000}\npatience_months = 2.5\n'
                                   '[programme]\nadvisers = 5\n', base=base.name)
    loaded = sc.load(path)
    s = loaded.scenario
    assert s.name == "variant"  # a variant takes its own file name, not the base's name
    assert s.frame.yearly_nok == {"2010": 1_000_000}  # dated table replaced whole, not merged entry by entry
    assert s.frame.patience_months == 2.5 and s.programme.advisers == 5
    # untouched keys of the same sections come from the base
    assert s.frame.rounds == drammen.frame.rounds and s.frame.priority == drammen.frame.priority
    assert s.programme.dropout_probability == drammen.programme.dropout_probability
    assert s.programme.households_per_adviser == drammen.programme.households_per_adviser
    # and whole sections the variant does not mention
    assert s.stock == drammen.stock and s.market == drammen.market
    assert [f.name for f in loaded.files][:2] == ["drammen.toml", "variant.toml"]


def test_a_value_changed_without_a_source_loses_the_base_files_source(tmp_path, drammen):
    """A report lists each key assumption with its source: a variant that changes a value without a source of its
    own must not show the base file's source, written for the base's value. One that keeps the base's value, or
    gives its own source, keeps a source."""
    base = copy_drammen(tmp_path)
    path = write_variant(tmp_path, '[frame]\nearmark_lte_share = 0.5\npriority = "first_come"\n'
                                   'rounds = [{month = 6, share = 1.0}]\n[programme]\nsell_to_tenants = false\n'
                                   'advisers = 5\n[sources]\n"programme.advisers" = "assumption: two more advisers"\n',
                         base=base.name)
    sources = sc.load(path).scenario.sources
    for key in ("frame.earmark_lte_share", "frame.rounds", "programme.sell_to_tenants"):
        assert sources[key] == "set in variant.toml without a source (the base file's source was for its own value)"
    assert sources["frame.priority"] == drammen.sources["frame.priority"]  # the same value as the base's
    assert sources["programme.advisers"] == "assumption: two more advisers"
    assert sources["frame.yearly_nok"] == drammen.sources["frame.yearly_nok"]  # not touched


def test_extends_chain_replaces_lists_and_dated_tables_whole(tmp_path, drammen):
    base = copy_drammen(tmp_path)
    write_variant(tmp_path, '[frame]\npriority = "lte_first"\nrounds = [{month = 3, share = 0.5}, {month = 10, share = 0.5}]\n'
                            '[programme]\nadvisers = 5\n[market]\nhusbanken_rate_pct = {2010 = 3.0, 2020 = 2.0}\n'
                            '[sources]\n"frame.priority" = "assumption: test"\n', "mid.toml", base=base.name)
    top = write_variant(tmp_path, '[frame]\nrounds = [{month = 6, share = 1.0}]\n[programme]\nadvisers = 7\n'
                                  '[market]\nhusbanken_rate_pct = {2010 = 4.0}\n', "top.toml", base="mid.toml")
    loaded = sc.load(top)
    s = loaded.scenario
    assert s.name == "top"
    assert s.frame.priority == "lte_first"  # from mid
    assert [(r.month, r.share) for r in s.frame.rounds] == [(6, 1.0)]  # top's list, not merged with mid's
    assert s.market.husbanken_rate_pct == {"2010": 4.0}  # top's table whole: no 2020 entry from mid
    assert s.programme.advisers == 7
    assert s.frame.yearly_nok == drammen.frame.yearly_nok  # from the base, two levels down
    # [sources] merge entry by entry
    assert s.sources["frame.priority"] == "assumption: test" and s.sources["stock.initial_units"] == drammen.sources["stock.initial_units"]
    assert [f.name for f in loaded.files][:3] == ["drammen.toml", "mid.toml", "top.toml"]


def test_files_hash_follows_every_file_of_the_chain(tmp_path):
    base = copy_drammen(tmp_path)
    variant = write_variant(tmp_path, "[programme]\nadvisers = 4\n", base=base.name)
    h1 = sc.load(variant).files_hash()
    assert sc.load(variant).files_hash() == h1
    base.write_text(base.read_text().replace("advisers = 3", "advisers = 2"))
    assert sc.load(variant).files_hash() != h1  # the base changed, so the identity of the run changes


def test_a_variant_value_wins_over_the_base_fit(tmp_path, drammen):
    path = write_variant(tmp_path, "[programme]\nbuy_own_share = 0.11\n")
    loaded = sc.load(path)
    assert loaded.scenario.programme.buy_own_share == 0.11  # the variant's own value, not the fit's
    assert "programme.buy_own_share" not in loaded.fit["applied"]
    assert all("programme.buy_own_share" not in d for d in loaded.posterior_draws(5, 1))
    assert loaded.scenario.programme.dropout_probability == drammen.programme.dropout_probability  # still fitted


def test_a_bad_value_the_fit_would_replace_is_still_an_error(tmp_path):
    """The file naming the fit has its fitted keys replaced on load; a value written there must still be valid
    (a probability of 1.5 is a mistake whether or not the fit overrides it)."""
    base = copy_drammen(tmp_path)
    text = base.read_text(encoding="utf-8")
    assert "dropout_probability = 0.25" in text
    base.write_text(text.replace("dropout_probability = 0.25", "dropout_probability = 1.5"), encoding="utf-8")
    assert "programme.dropout_probability" in sc.load(DRAMMEN).fitted_keys
    with pytest.raises(ScenarioError) as info:
        sc.load(base)
    assert str(base) in str(info.value) and "programme.dropout_probability" in str(info.value)
    assert "at most 1" in str(info.value)


FITTED = DRAMMEN.parent.parent / "calibration" / "fitted"


def _with_fit(tmp_path, old, new):
    """A copy of drammen.toml naming a copy of its fit in which ``old`` is replaced by ``new`` (in [posterior]
    if ``old`` starts with "posterior:")."""
    fit = tmp_path / "fit.toml"
    text = (FITTED / "drammen.toml").read_text(encoding="utf-8")
    head, tail = (text.split("\n[posterior]\n") if old.startswith("posterior:") else (text, None))
    old = old.removeprefix("posterior:")
    where = head if tail is None else tail
    assert old in where
    where = where.replace(old, new, 1)
    fit.write_text(where if tail is None else head + "\n[posterior]\n" + where, encoding="utf-8")
    path = copy_drammen(tmp_path)
    path.write_text(re.sub(r'^fitted = ".*"', 'fitted = "fit.toml"', path.read_text(encoding="utf-8"), flags=re.M),
                    encoding="utf-8")
    return path, fit


def test_every_committed_fit_loads():
    for f in sorted(FITTED.glob("*.toml")):
        fit = sc.read_fit(f)
        assert fit["estimate"] and len(fit["posterior"]["weights"]) == fit["fit"]["particles"]


@pytest.mark.parametrize("old, new, key, rule", [
    # an estimate that breaks the schema is the fit's mistake, not the scenario's
    ('"programme.dropout_probability" = 0.', '"programme.dropout_probability" = 1.', "estimate.programme.dropout_probability",
     "must be at most 1"),
    ('"programme.dropout_probability" = 0.265005', '"programme.dropout_probability" = "x"',
     "estimate.programme.dropout_probability", "must be a finite number (got 'x')"),
    ('"programme.dropout_probability" = 0.265005', '"programme.dropout_probability" = nan',
     "estimate.programme.dropout_probability", "must be a finite number"),
    # a posterior lte run could not draw from
    ("weights = [", "weights = [-1.0, ", "posterior.weights", "at least 0"),
    ("weights = [", "weights = [nan, ", "posterior.weights", "finite"),
    ("weights = [", "weights = [0.0, ", "posterior.programme.screening_rate_per_year@2010",
     "needs a list of 151 draws, one per weight (got 150)"),
    ("weights = [", "weights = [0.0]\nold = [", "posterior.old", "unknown key: not weights or a key of [estimate]"),
    ("posterior:\"programme.dropout_probability\" = [", '"programme.dropout_probability" = [0.5, ',
     "posterior.programme.dropout_probability", "needs a list of 150 draws, one per weight (got 151)"),
    ("posterior:\"programme.dropout_probability\" = [0.", '"programme.dropout_probability" = [1.',
     "posterior.programme.dropout_probability", "draw 1: must be at most 1"),
    # tables and keys lte calibrate does not write
    ("\n[posterior]\n", "\n[posterier]\n", "posterier", "unknown table; a fitted parameter file has [fit], [estimate]"),
    ("\n[fit]\n", "\n[foo]\nx = 1\n[fit]\n", "foo", "unknown table"),
    ("particles = 150", 'particles = "x"', "fit.particles", "must be a whole number"),
    ("particles = 150", "particles = 150\nparticle = 150", "fit.particle", "unknown key; did you mean 'particles'"),
    ("\n[interval90]\n", '\n[interval90]\n"programme.advisers" = [1, 2]\n', "interval90.programme.advisers",
     "unknown key: not a key of [estimate]"),
])
def test_a_fitted_file_is_checked_and_named_in_its_errors(tmp_path, old, new, key, rule):
    path, fit = _with_fit(tmp_path, old, new)
    with pytest.raises(ScenarioError) as info:
        sc.load(path)
    assert str(info.value).startswith(f"{fit}: {key}: "), str(info.value)
    assert rule in str(info.value), str(info.value)


# ---------------------------------------------------------------------------------------------- errors
def _error(tmp_path, body):
    path = write_variant(tmp_path, body, "bad.toml")
    with pytest.raises(ScenarioError) as info:
        sc.load(path)
    return str(info.value), path


@pytest.mark.parametrize("body, key, rule", [
    # unknown keys, with a suggestion
    ("[frame]\npatiense_months = 3\n", "frame.patiense_months", "unknown key; did you mean 'patience_months'"),
    ("[frme]\nyearly_nok = 5\n", "frme", "unknown key; did you mean 'frame'"),
    ("colour = 1\n", "colour", "unknown key"),
    ('[sources]\n"frame.yearly_nokk" = "x"\n', "sources", "did you mean 'frame.yearly_nok'"),
    # negative amounts and counts
    ("[frame]\nyearly_nok = -5\n", "frame.yearly_nok", "at least 0"),
    ("[frame]\nyearly_nok = {2010 = 5_000_000, 2012 = -1}\n", "frame.yearly_nok",
     "at 2012-01 is -1; it must be at least 0"),
    # a figure in another unit: NOK in millions, a rate as a fraction (0 stays allowed: no frame, no grant)
    ("[frame]\nyearly_nok = 150\n", "frame.yearly_nok", "is 150; amounts are in NOK, not thousands or millions"),
    ("[frame]\nyearly_nok = {2010 = 70_000_000, 2013 = 150}\n", "frame.yearly_nok", "at 2013-01 is 150; amounts are in NOK"),
    ("[stock]\nvalue_small_nok = 1.4\n", "stock.value_small_nok", "amounts are in NOK"),
    ("[tilskudd]\nincome_limit_nok_year = 350\n", "tilskudd.income_limit_nok_year", "amounts are in NOK"),
    ("[market]\nhusbanken_rate_pct = {2010 = 0.027}\n", "market.husbanken_rate_pct",
     "rates are in percent: write 2.7 for 2.7 %, not 0.027"),
    ("[startlan]\nstress_floor_pct = 0.05\n", "startlan.stress_floor_pct", "rates are in percent"),
    # a yearly budget changed within a year would wait for the next January: refused
    ("[tilskudd]\nbudget_nok_year = {2010 = 6_000_000, 2011-07 = 0}\n", "tilskudd.budget_nok_year",
     '2011-07: a yearly budget is dated by year ("2011" or "2012")'),
    ("[stock]\ninitial_units = 0\n", "stock.initial_units", "at least 1"),
    ("[programme]\nadvisers = -1\n", "programme.advisers", "at least 0"),
    # probabilities above one (plain and dated)
    ("[programme]\ndropout_probability = 1.5\n", "programme.dropout_probability", "at most 1"),
    ("[programme]\npotential_share = {2010 = 0.3, 2015 = 1.2}\n", "programme.potential_share", "at most 1"),
    ("[frame]\nearmark_lte_share = 1.01\n", "frame.earmark_lte_share", "at most 1"),
    # dates out of order: the period, a dated table, the frame rounds
    ('[period]\nend = "2009-12"\n', "period", "out of order"),
    ('[period]\nprogramme_start = "2031-01"\n', "period", "out of order"),
    ("[market]\nprice_index = {2012 = 1.0, 2011 = 1.1}\n", "market.price_index", "out of order"),
    ("[frame]\nrounds = [{month = 9, share = 0.5}, {month = 2, share = 0.5}]\n", "frame", "out of order"),
    ("[frame]\nrounds = [{month = 2, share = 0.5}, {month = 2, share = 0.5}]\n", "frame", "out of order"),
    # other rules
    ("[frame]\nrounds = [{month = 2, share = 0.5}]\n", "frame", "sum to 1"),
    ("[startlan]\nlong_term_years = 25\n", "startlan", "long_term_years: 25 years is shorter than term_years"),
    # a month left out, a period of centuries, magnitudes no municipality has (typos; some would overflow or
    # exhaust memory in the run)
    ('[period]\nend = "2030"\n', "period.end", "write it YYYY-MM, with the month in two digits"),
    ('[period]\nprogramme_start = "2011-6"\n', "period.programme_start", "with the month in two digits"),
    ("[period]\nprogramme_start = 10:30:00\n", "period.programme_start",
     '10:30:00 is written without quotes: write the year-month in quotes, "YYYY-MM"'),
    ("[startlan]\nloss_given_default_share = 0.25\n", "startlan.loss_given_default_share",
     "replaced by startlan.forced_sale_discount_share"),
    ('[period]\nend = "9999-12"\n', "period", "longer than 100 years"),
    ("[programme]\nreplacement_ratio = 1e18\n", "programme.replacement_ratio", "at most 10"),
    ("[market]\nhusbanken_rate_pct = 45\n", "market.husbanken_rate_pct", "at most 30"),
    ("[market]\nprice_index = {2010 = 1.0, 2020 = 1e18}\n", "market.price_index", "at most 1000"),
    ("[households]\nincome_sigma_log = 13\n", "households.income_sigma_log", "at most 3"),
    ("[programme]\nadvice_months_cv = 1e300\n", "programme.advice_months_cv", "at most 10"),
    ("[stock]\ninitial_units = 1000000000000000000\n", "stock.initial_units", "at most 1000000"),
    ("[tilskudd]\nwritedown_years = 1e18\n", "tilskudd.writedown_years", "at most 100"),
    ("[households]\narrivals_per_year = 1e300\n", "households.arrivals_per_year", "at most 1e+06"),
    ("[frame]\nrounds = [{month = 13, share = 1.0}]\n", "frame.rounds.0.month", "at most 12"),
    ("[market]\nhusbanken_rate_pct = {2012 = 2.0}\n", "market.husbanken_rate_pct", "period start"),
    ('[period]\nstart = "2012-13"\n', "period.start", "month must be 01 to 12"),
    ('[frame]\nyearly_nok = {"2010-13" = 5}\n', "frame.yearly_nok", "month must be 01 to 12"),
    ('[stock]\ninitial_units = "many"\n', "stock.initial_units", "expected a number"),
    ("[stock]\ninitial_units = 1e308\n", "stock.initial_units", "must be at most 1000000 (got 1e+308)"),
    ("[stock]\ninitial_units = -1e300\n", "stock.initial_units", "must be at least 1 (got -1e+300)"),
    ("seed = 1e300\n", "seed", "must be a whole number of ordinary size (got 1e+300)"),
    ("[frame]\nyearly_nok = {2010 = 5e7, 2015 = 6e7, 2015-01 = 7e7}\n", "frame.yearly_nok",
     "the date 2015-01 is given twice (as 2015 and as 2015-01); give each date once"),
    # a number or a yes/no written as text is refused, not read as 0.4 or true
    ('[stock]\nfamily_share = "0.4"\n', "stock.family_share", "expected a number, got the text '0.4'"),
    ('[programme]\nadvisers = "3"\n', "programme.advisers", "write it without quotes"),
    ('[frame]\ncarry_over = "yes"\n', "frame.carry_over", "expected true or false, got 'yes'"),
    ("[frame]\ncarry_over = 1\n", "frame.carry_over", "expected true or false, got 1"),
    ("[stock]\ninitial_units = true\n", "stock.initial_units", "expected a number, got true"),
    ('[frame]\npriority = "biggest_first"\n', "frame.priority", "first_come"),
    ('name = "two words"\n', "name", "must be a short text usable as a folder name: letters A-Z, digits and _ . -"),
    ('name = "Tromsø"\n', "name", "letters A-Z, digits and _ . -, not starting with . (got 'Tromsø')"),
    ('name = ".."\n', "name", "not starting with ."),
])
def test_errors_name_file_key_and_rule(tmp_path, body, key, rule):
    msg, path = _error(tmp_path, body)
    assert msg.startswith(f"{path}: {key}"), msg
    assert rule in msg, msg
    assert "Traceback" not in msg


@pytest.mark.parametrize("file", ["tromsø.toml", "my variant.toml"])
def test_a_variant_named_by_its_file_is_told_the_rule_for_names(tmp_path, file):
    """A variant without a name takes its file's name: a name that breaks the rule is the variant's mistake (not
    its base's), said in words."""
    base = copy_drammen(tmp_path, "tiny.toml")
    variant = tmp_path / file
    variant.write_text('extends = "tiny.toml"\n', encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        sc.load(variant)
    assert str(info.value) == (f"{variant}: name: must be a short text usable as a folder name: letters A-Z, digits "
                               f"and _ . -, not starting with . (got {variant.stem!r}, the file's name, as name is "
                               "not set)")
    assert str(base) not in str(info.value)
    # a file extending it and naming itself is fine
    (tmp_path / "named.toml").write_text(f'extends = "{file}"\nname = "ok"\n', encoding="utf-8")
    assert sc.load(tmp_path / "named.toml").scenario.name == "ok"


def test_every_problem_is_listed_one_line_each(tmp_path):
    msg, path = _error(tmp_path, "[frame]\nyearly_nok = -5\npatience_months = 0\n[programme]\ndropout_probability = 2\n")
    lines = msg.splitlines()
    assert len(lines) == 3 and all(line.startswith(f"{path}: ") for line in lines), msg
    assert {"frame.yearly_nok", "frame.patience_months", "programme.dropout_probability"} == \
           {line.split(": ")[1] for line in lines}


def test_unknown_key_in_a_frame_round_gets_a_suggestion(tmp_path):
    """A typo inside a list of tables (frame.rounds) deserves the same 'did you mean' as anywhere else."""
    msg, path = _error(tmp_path, "[frame]\nrounds = [{month = 2, share = 1.0, cut_max_shar = 0.1}]\n")
    assert msg.startswith(f"{path}: frame.rounds.0.cut_max_shar: unknown key"), msg
    assert "did you mean 'cut_max_share'" in msg, msg


@pytest.mark.parametrize("body, key", [
    ('[frame]\nyearly_nok = "lots"\n', "frame.yearly_nok"),
])
def test_a_wrong_type_for_a_dated_key_names_the_key_once(tmp_path, body, key):
    """The key path in the message is the scenario's key, not pydantic's union branches (".float", ".dict[...]")."""
    msg, path = _error(tmp_path, body)
    assert msg.startswith(f"{path}: {key}: "), msg
    assert "dict[" not in msg and f"{key}.float" not in msg, msg
    assert len(msg.splitlines()) == 1, msg


@pytest.mark.parametrize("body, key", [
    ("[frame]\nyearly_nok = {2010 = true}\n", "frame.yearly_nok"),
    ("[frame]\npatience_months = true\n", "frame.patience_months"),
])
def test_a_true_or_false_is_not_a_number(tmp_path, body, key):
    """parse_dated refuses booleans explicitly; pydantic must not turn true into 1 before it gets there."""
    msg, path = _error(tmp_path, body)
    assert msg.startswith(f"{path}: {key}"), msg


@pytest.mark.parametrize("body, key", [
    ("[frame]\nyearly_nok = {2010 = 5e7, 2012 = nan}\n", "frame.yearly_nok"),
    ("[stock]\nvalue_small_nok = inf\n", "stock.value_small_nok"),
])
def test_nan_and_infinity_are_refused(tmp_path, body, key):
    """A NaN frame passes validation today and `lte run` then dies with a pandas traceback."""
    msg, path = _error(tmp_path, body)
    assert msg.startswith(f"{path}: {key}"), msg


def test_malformed_missing_and_circular(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\n[stock\n")
    with pytest.raises(ScenarioError, match=rf"^{re.escape(str(bad))}: not valid TOML"):
        sc.load(bad)
    with pytest.raises(ScenarioError, match=rf"^{re.escape(str(tmp_path / 'nope.toml'))}: file not found$"):
        sc.load(tmp_path / "nope.toml")
    with pytest.raises(ScenarioError, match="is a folder"):
        sc.load(tmp_path)
    a, b, c = tmp_path / "a.toml", tmp_path / "b.toml", tmp_path / "c.toml"
    a.write_text('extends = "b.toml"\n')
    b.write_text('extends = "c.toml"\n')
    c.write_text('extends = "a.toml"\n')
    with pytest.raises(ScenarioError, match="extends: files extend each other in a circle"):
        sc.load(a)
    selfish = tmp_path / "self.toml"
    selfish.write_text('extends = "self.toml"\n')
    with pytest.raises(ScenarioError, match="circle"):
        sc.load(selfish)
    orphan = tmp_path / "orphan.toml"
    orphan.write_text('extends = "missing.toml"\n')
    with pytest.raises(ScenarioError, match=rf"^{re.escape(str(orphan))}: extends: base file .*missing.toml not found"):
        sc.load(orphan)
    number = tmp_path / "number.toml"
    number.write_text("extends = 5\n")
    with pytest.raises(ScenarioError, match="extends: must be a file name in quotes"):
        sc.load(number)


def test_error_in_base_names_the_base_file(tmp_path):
    base = copy_drammen(tmp_path, "base.toml")
    base.write_text(base.read_text().replace("dropout_probability = 0.", "dropout_probability = 3."))
    variant = write_variant(tmp_path, "[programme]\nadvisers = 3\n", "v.toml", base="base.toml")
    with pytest.raises(ScenarioError) as info:
        sc.load(variant, apply_fit=False)
    assert str(info.value).startswith(f"{base}: programme.dropout_probability: must be at most 1")
    # ... while a mistake the variant makes is blamed on the variant
    variant.write_text('extends = "drammen.toml"\n[programme]\nadvisers = -3\n')
    copy_drammen(tmp_path)
    with pytest.raises(ScenarioError) as info:
        sc.load(variant)
    assert str(info.value).startswith(f"{variant}: programme.advisers: must be at least 0")


# ---------------------------------------------------------------------------------------------- with_overrides
def test_with_overrides(drammen):
    s = sc.with_overrides(drammen, {"frame.yearly_nok": 1e8, "frame.priority": "lte_first"})
    assert s.frame.yearly_nok == 1e8 and s.frame.priority == "lte_first"
    assert drammen.frame.priority == "first_come" and drammen.frame.yearly_nok != 1e8  # the original is untouched
    assert s.programme == drammen.programme  # everything else as it was
    # one entry of a dated table
    s = sc.with_overrides(drammen, {"frame.yearly_nok@2014": 5e6})
    assert s.frame.yearly_nok["2014"] == 5e6
    assert {k: v for k, v in s.frame.yearly_nok.items() if k != "2014"} == \
           {k: v for k, v in drammen.frame.yearly_nok.items() if k != "2014"}


def test_with_overrides_errors(drammen):
    with pytest.raises(ScenarioError, match=r"^<overrides>: frame.yearly_nokk: unknown key; did you mean 'frame.yearly_nok'"):
        sc.with_overrides(drammen, {"frame.yearly_nokk": 1})
    with pytest.raises(ScenarioError, match="frame.earmark_lte_share: must be at most 1"):
        sc.with_overrides(drammen, {"frame.earmark_lte_share": 2})
    with pytest.raises(ScenarioError, match="has no dated entry 2015"):
        sc.with_overrides(drammen, {"frame.yearly_nok@2015": 1})
    # rules across keys are checked again
    with pytest.raises(ScenarioError, match="period: dates out of order"):
        sc.with_overrides(drammen, {"period.end": "2009-12"})
    with pytest.raises(ScenarioError, match=r"^sweep.toml: "):
        sc.with_overrides(drammen, {"programme.advisers": -1}, file="sweep.toml")


def test_a_period_of_one_month_is_a_period(drammen):
    """The end month is included, so a period may start and end in the same month; it runs and has one month."""
    from sim.runner import run_replication

    one = sc.with_overrides(drammen, {"period.start": "2012-03", "period.end": "2012-03",
                                      "period.programme_start": "2012-03"})
    assert one.period.n_months == 1
    assert list(run_replication(one, 1, 0).monthly["month"]) == ["2012-03"]
