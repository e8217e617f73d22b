"""Suites: TOML expansion into cells, keys, shards, validation."""

from __future__ import annotations

import pytest

from ganlab.bench.suite import builtin_suites, load_suite, parse_shard, suite_from_dict
from ganlab.errors import GanlabError

BASE = {"name": "t", "variants": ["vanilla", "ns"], "datasets": ["ring8", "grid25"], "seeds": [0, 1, 2],
        "steps": 50}


def test_expansion_is_the_full_product_in_a_fixed_order():
    suite = suite_from_dict(BASE)
    assert len(suite.cells) == 2 * 2 * 3
    first = suite.cells[:4]
    assert [(c.variant, c.dataset, c.seed) for c in first] == [
        ("vanilla", "ring8", 0), ("vanilla", "ring8", 1), ("vanilla", "ring8", 2), ("vanilla", "grid25", 0)]
    assert len({c.key for c in suite.cells}) == 12
    assert suite_from_dict(BASE).cells == suite.cells  # deterministic


def test_overrides_layer_set_then_variant_then_sweep():
    suite = suite_from_dict({**BASE, "variants": ["vanilla"], "datasets": ["ring8"], "seeds": [0],
                             "set": {"lr_d": 1e-4, "hidden": 32},
                             "variant_set": {"vanilla": {"hidden": 64}},
                             "sweep": [{"lr_d": 1e-3}, {}]})
    a, b = suite.cells
    assert dict(a.overrides) == {"lr_d": 1e-3, "hidden": 64} and a.label == "lr_d=0.001"
    assert dict(b.overrides) == {"lr_d": 1e-4, "hidden": 64} and b.label == ""
    assert a.override_text() == {"lr_d": "0.001", "hidden": "64"}


def test_key_changes_with_the_budget_but_not_with_the_group_name():
    one = suite_from_dict({**BASE, "group": [{"name": "a"}]}).cells[0]
    renamed = suite_from_dict({**BASE, "group": [{"name": "b"}]}).cells[0]
    longer = suite_from_dict({**BASE, "steps": 51}).cells[0]
    assert one.key == renamed.key and one.group != renamed.group
    assert one.key != longer.key


def test_groups_override_top_level_and_identical_cells_run_once():
    suite = suite_from_dict({**BASE, "group": [{"name": "g1", "seeds": [0]},
                                               {"name": "g2", "seeds": [0], "steps": 70},
                                               {"name": "dup", "seeds": [0]}]})
    assert len(suite.cells) == 2 * 2 + 2 * 2  # the third group repeats the first
    assert {c.steps for c in suite.cells if c.group == "g2"} == {70}


def test_shards_are_disjoint_and_cover_the_suite():
    suite = suite_from_dict(BASE)
    shards = [suite.shard(i, 5) for i in range(1, 6)]
    keys = [c.key for shard in shards for c in shard]
    assert sorted(keys) == sorted(c.key for c in suite.cells)
    assert len(keys) == len(set(keys))
    assert [len(s) for s in shards] == [3, 3, 2, 2, 2]


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0", "-1/2"])
def test_bad_shard_text_is_one_clear_error(text):
    with pytest.raises(GanlabError, match="--shard"):
        parse_shard(text)


def test_parse_shard():
    assert parse_shard(None) == (1, 1)
    assert parse_shard("2/4") == (2, 4)


@pytest.mark.parametrize("change, message", [
    ({"stepz": 3}, "unknown setting 'stepz'"),
    ({"steps": "10"}, "'steps' must be a int"),
    ({"steps": 0}, "steps must be positive"),
    ({"seeds": [-1]}, "seeds must be non-negative"),
    ({"variants": []}, "'variants' is required"),
    ({"sweep": [1]}, "sweep"),
])
def test_invalid_suites_are_refused(change, message):
    with pytest.raises(GanlabError, match=message):
        suite_from_dict({**BASE, **change})


def test_unknown_names_are_refused_before_running(registry):
    with pytest.raises(GanlabError, match="unknown variant 'nosuch'"):
        suite_from_dict({**BASE, "variants": ["nosuch"]}).check_names(registry)
    with pytest.raises(GanlabError, match="'lr_x' is not known"):
        suite_from_dict({**BASE, "set": {"lr_x": 1}}).check_names(registry)


def test_unknown_suite_names_the_built_in_ones():
    with pytest.raises(GanlabError, match="built-in suites: .*modes"):
        load_suite("no-such-suite")


def test_suite_file_with_a_toml_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [\n")
    with pytest.raises(GanlabError, match="not valid TOML"):
        load_suite(str(bad))


@pytest.mark.parametrize("name", ["modes", "digits", "mnist", "report"])
def test_built_in_suites_load_and_name_only_registered_things(name, registry):
    assert name in builtin_suites()
    suite = load_suite(name)
    suite.check_names(registry)
    assert len({c.key for c in suite.cells}) == len(suite.cells)


def test_modes_suite_is_the_equal_budget_comparison_the_issue_asks_for():
    suite = load_suite("modes")
    variants = {c.variant for c in suite.cells}
    assert "vanilla" in variants and len(variants - {"vanilla"}) >= 5
    assert {c.dataset for c in suite.cells} == {"ring8", "grid25"}
    assert {c.seed for c in suite.cells} == {0, 1, 2}
    assert len({c.steps for c in suite.cells}) == 1  # equal budget
    assert all(c.eval_every > 0 for c in suite.cells)  # coverage curves
