"""Property-based tests (hypothesis) of hyperparameter parsing: values round-trip through
their ``--set`` text, and no input whatever escapes as anything but a GanlabError."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ganlab.config import common_defaults, parse_assignments, parse_value, resolve_hparams
from ganlab.data.mixtures import ring
from ganlab.errors import GanlabError
from ganlab.plugins import get_registry

FAST = settings(max_examples=150, deadline=None)
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
LIKES = [True, 7, 0.5, "text", [1], {"a": 1}, None]
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | finite_floats | st.text(),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                           max_leaves=12)


def render(value) -> str:
    """How a user writes a value after ``--set key=``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


# ---- parse_value ----------------------------------------------------------------------------------
@FAST
@given(st.integers())
def test_ints_round_trip_exactly(n):
    # Exactly, even past 2**53 where going through float would lose digits.
    for text in (str(n), f"  {n}\t", f"+{n}" if n >= 0 else str(n)):
        value = parse_value(text, 7, "k")
        assert value == n and type(value) is int


@FAST
@given(finite_floats)
def test_an_int_option_takes_whole_floats_and_refuses_fractions(x):
    if x.is_integer():
        assert parse_value(repr(x), 7, "k") == int(x)
    else:
        with pytest.raises(GanlabError, match=r"expected int"):
            parse_value(repr(x), 7, "k")


@FAST
@given(finite_floats)
def test_floats_round_trip_exactly(x):
    for text in (repr(x), str(x)):
        value = parse_value(text, 0.5, "k")
        assert value == x and type(value) is float


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1e999"])
def test_non_finite_numbers_are_refused(text):
    with pytest.raises(GanlabError, match="expected float"):
        parse_value(text, 0.5, "lr_d")
    with pytest.raises(GanlabError, match="expected int"):
        parse_value(text, 7, "batch_size")


@FAST
@given(st.sampled_from(TRUE_WORDS + FALSE_WORDS), st.randoms(use_true_random=False))
def test_bool_words_in_any_case(word, rnd):
    text = "".join(c.upper() if rnd.random() < 0.5 else c for c in word)
    assert parse_value(f" {text} ", False, "k") is (word in TRUE_WORDS)


@settings(max_examples=60, deadline=None)
@given(st.lists(json_values, max_size=3) | st.dictionaries(st.text(), json_values, max_size=3))
def test_json_lists_and_dicts_round_trip(value):
    assert parse_value(json.dumps(value), type(value)(), "k") == value


@FAST
@given(st.text(), st.sampled_from(LIKES))
def test_any_text_parses_to_the_default_type_or_is_a_one_line_ganlab_error(text, like):
    try:
        value = parse_value(text, like, "key")
    except GanlabError as exc:
        assert str(exc).startswith("--set key=") and "expected" in str(exc)
        return
    expected = str if like is None else type(like)
    assert type(value) is expected
    if isinstance(value, float):
        assert math.isfinite(value)


def test_absurdly_nested_json_is_an_error_not_a_crash():
    with pytest.raises(GanlabError):
        parse_value("[" * 100_000, [], "k")


# ---- parse_assignments ----------------------------------------------------------------------------
keys = st.text(min_size=1).filter(lambda k: "=" not in k and k.strip())


@FAST
@given(st.lists(st.tuples(keys, st.text()), max_size=6))
def test_assignments_split_at_the_first_equals_sign(pairs):
    parsed = parse_assignments([f"{k}={v}" for k, v in pairs])
    expected = {}
    for k, v in pairs:
        expected[k.strip()] = v  # values keep every character, '=' included; the last one wins
    assert parsed == expected


@FAST
@given(st.text().filter(lambda s: "=" not in s or not s.partition("=")[0].strip()))
def test_an_item_without_a_key_is_an_error(item):
    with pytest.raises(GanlabError, match="expected key=value"):
        parse_assignments([item])


# ---- resolve_hparams ------------------------------------------------------------------------------
VARIANTS = list(get_registry().variants())
RING = ring().spec
any_value = st.one_of(st.text(max_size=12), st.integers(), st.floats(), st.booleans(), st.none(),
                      st.sampled_from(["1", "0", "-1", "1e-4", "2e-4", "64", "0.5", "true", "adam", "nan"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VARIANTS), st.data())
def test_resolve_gives_typed_valid_values_or_a_ganlab_error(variant, data):
    defaults = {**common_defaults(), **RING.suggested_hparams, **variant.hparams}
    key_names = st.sampled_from(sorted(defaults)) | st.text(max_size=8)
    overrides = data.draw(st.dictionaries(key_names, any_value, max_size=4))
    try:
        resolved = resolve_hparams(variant, RING, overrides)
    except GanlabError:
        return
    assert resolved.keys() == defaults.keys()
    for key, value in resolved.items():
        like = defaults[key]
        if like is not None:
            assert type(value) is type(like), (key, value)
    for key in ("batch_size", "lr_g", "lr_d", "n_critic", "latent_dim"):
        assert resolved[key] > 0
    assert 0 <= resolved["beta1"] < 1 and 0 <= resolved["ema"] < 1


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(VARIANTS), st.data())
def test_resolved_values_round_trip_through_set_text(variant, data):
    defaults = {**common_defaults(), **RING.suggested_hparams, **variant.hparams}
    key = data.draw(st.sampled_from(sorted(defaults)))
    like = defaults[key]
    if isinstance(like, bool):
        value = data.draw(st.booleans())
    elif isinstance(like, int):
        value = data.draw(st.integers(1, 10**6))
    elif isinstance(like, float):
        value = data.draw(st.floats(1e-12, 0.999, allow_nan=False))
    elif isinstance(like, str):
        value = data.draw(st.text(max_size=10))
    else:
        return
    try:
        resolved = resolve_hparams(variant, RING, {key: value})
    except GanlabError:
        return  # not valid for this key (e.g. a batch size that pack does not divide)
    assert resolved[key] == value
    # Every resolved value, written as --set text and parsed back, is the same value.
    text = [f"{k}={render(v)}" for k, v in resolved.items() if v is not None]
    again = resolve_hparams(variant, RING, parse_assignments(text))
    assert again == resolved
    assert all(type(again[k]) is type(resolved[k]) for k in resolved)


@settings(max_examples=25, deadline=None)
@given(key=st.sampled_from(["batch_size", "lr_d", "spectral_norm", "nosuchkey"]), text=st.text(max_size=20))
def test_set_on_the_command_line_never_gives_a_traceback(key, text, tmp_path_factory):
    from tests.conftest import run_cli

    try:
        parse_value(text, common_defaults().get(key, 0), key)
        assume(key == "nosuchkey")  # a valid value would start a training run
    except GanlabError:
        pass
    out = tmp_path_factory.mktemp("never-written")
    result = run_cli("train", "vanilla", "--steps", "1", "--out", str(out / "run"), "--set", f"{key}={text}")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganlab: error: ") and not (out / "run").exists()
