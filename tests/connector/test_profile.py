"""Source profiles (SPEC §4): what a profile file may say, and the errors an
integrator gets for one that cannot work, each naming the table or key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from masterplan.connector.profile import (
    ProfileError,
    load_profile,
    parse_params,
    parse_profile,
    shipped_profiles,
    source_from,
)
from masterplan.contract.tables import INPUT_TABLES


def profile_text(
    queries: dict[str, str] | None = None,
    *,
    head: str = '[profile]\nname = "erp"\n',
    params: str = "",
    extra: str = "",
) -> str:
    """A profile whose tables are empty except those ``queries`` give."""
    parts = [head, f"[parameters]\n{params}\n"]
    for name in INPUT_TABLES:
        if queries and name in queries:
            parts.append(f'[tables.{name}]\nquery = """\n{queries[name]}\n"""\n')
        else:
            parts.append(f'[tables.{name}]\nempty = true\nreason = "none here"\n')
    parts.append(extra)
    return "\n".join(parts)


def test_a_profile_names_every_table_with_a_query_or_as_empty() -> None:
    profile = parse_profile(
        profile_text(
            {"items": "SELECT id AS item_id FROM erp_items WHERE co = :company"},
            params="company = 1\n",
        ),
        "erp.toml",
    )
    assert profile.name == "erp"
    assert set(profile.tables) == set(INPUT_TABLES)
    assert profile.tables["items"].params == {"company": 1}
    assert profile.tables["forecasts"].query is None
    assert profile.tables["forecasts"].reason == "none here"


def test_a_forgotten_table_is_an_error_naming_it() -> None:
    text = profile_text().replace('[tables.forecasts]\nempty = true\nreason = "none here"', "")
    with pytest.raises(ProfileError, match=r"no \[tables\.forecasts\]"):
        parse_profile(text, "erp.toml")


def test_an_unknown_table_or_key_is_an_error() -> None:
    with pytest.raises(ProfileError, match=r"\[tables\.item\] is no input table"):
        parse_profile(profile_text(extra="[tables.item]\nempty = true\n"), "erp.toml")
    text = profile_text({"items": "SELECT 1"}).replace('query = """', 'qurey = """', 1)
    with pytest.raises(ProfileError, match=r"\[tables\.items\]: unknown key 'qurey'"):
        parse_profile(text, "erp.toml")


def test_a_parameter_the_profile_does_not_declare_is_an_error() -> None:
    with pytest.raises(ProfileError, match=r"\[tables\.items\]: the query uses :company"):
        parse_profile(profile_text({"items": "SELECT 1 WHERE x = :company"}), "erp.toml")


def test_command_line_parameters_take_the_type_of_their_default() -> None:
    text = profile_text(
        {"items": "SELECT :company, :since, :active, :zone, :share"},
        params='company = 1\nsince = 2026-01-01\nactive = true\nzone = "UTC"\nshare = 0.5\n',
    )
    given = parse_params(
        ["company=2", "since=2026-12-07", "active=false", "zone=Europe/Paris", "share=1.5"]
    )
    values = parse_profile(text, "erp.toml", given).parameters
    assert values == {
        "company": 2,
        "since": dt.date(2026, 12, 7),
        "active": False,
        "zone": "Europe/Paris",
        "share": 1.5,
    }
    with pytest.raises(ProfileError, match=r"parameter 'company': cannot read 'two' as int"):
        parse_profile(text, "erp.toml", {"company": "two"})
    with pytest.raises(ProfileError, match=r"no parameter 'compnay' \(it has: active, company"):
        parse_profile(text, "erp.toml", {"compnay": "2"})
    with pytest.raises(ProfileError, match="expected NAME=VALUE"):
        parse_params(["company"])


def test_an_empty_table_with_a_query_is_ambiguous() -> None:
    text = profile_text().replace(
        'reason = "none here"', 'reason = "none here"\nquery = "SELECT 1"', 1
    )
    with pytest.raises(ProfileError, match="has no query"):
        parse_profile(text, "erp.toml")


def test_invalid_toml_says_where() -> None:
    with pytest.raises(ProfileError, match="not valid TOML"):
        parse_profile("[profile\nname = 1", "erp.toml")


def test_a_trailing_semicolon_does_not_break_the_subquery(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'erp.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE erp (code TEXT)")
        conn.exec_driver_sql("INSERT INTO erp VALUES ('A'), ('B')")
    query = "SELECT code AS item_id, 'purchase' AS default_order_type FROM erp WHERE code > :low;"
    profile = parse_profile(profile_text({"items": query}, params='low = ""\n'), "erp.toml")
    select = sa.select(sa.column("item_id")).select_from(
        source_from(profile, INPUT_TABLES["items"])
    )
    with engine.connect() as conn:
        assert sorted(r[0] for r in conn.execute(select)) == ["A", "B"]
    engine.dispose()


def test_profiles_load_by_path_and_shipped_ones_by_name(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(profile_text(head=""), encoding="utf-8")
    assert load_profile(path).name == "mine"  # named after its file when it says nothing
    for name in shipped_profiles():
        assert load_profile(name).name == name
    with pytest.raises(ProfileError, match=r"'nosuch' is neither a file nor a shipped profile"):
        load_profile("nosuch")


def test_the_odoo_pack_ships_with_the_package() -> None:
    assert {"odoo17", "odoo18"} <= set(shipped_profiles())
    for name in ("odoo17", "odoo18"):
        profile = load_profile(name)
        assert profile.dialects == ("postgresql",)
        assert profile.tables["items"].query is not None
