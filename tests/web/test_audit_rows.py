"""How the audit page lays out an entry (web.pages.audit_rows): the actor in
words, the details as pairs, which values are opaque identifiers."""

from __future__ import annotations

import pytest

from web.pages.audit_rows import Actor, DetailValue, actor_view, details_view, is_identifier


@pytest.mark.parametrize(
    ("actor", "shown"),
    [("user:ada", Actor("user", "ada", False)),
     ("token:ci", Actor("token", "ci", False)),
     ("entry-link:3f2a9c1e-5b7d-4e21-9a0c-d4e5f6a7b8c9",
      Actor("entry link", "3f2a9c1e-5b7d-4e21-9a0c-d4e5f6a7b8c9", True)),
     ("os:root", Actor("OS user", "root", False)),
     ("gwvault:serve", Actor("gwvault", "serve", False)),
     ("anonymous", Actor("", "anonymous", False)),
     ("robot:r2", Actor("robot", "r2", False)),  # an unknown kind shows as written
     ("user:", Actor("", "user:", False))],
)  # fmt: skip
def test_the_actor_reads_as_kind_and_name(actor: str, shown: Actor) -> None:
    assert actor_view(actor) == shown


@pytest.mark.parametrize(
    "text",
    ["a24fe5815a843ee5ff74d1308a9177de", "3f2a9c1e-5b7d-4e21-9a0c-d4e5f6a7b8c9",
     "kX3vP8qL2mN7rT1wY6zA0bC4dE9fG5hJ8kL2mN7rT1w", "-Rm5A3prohKx-GoEcsUlFGQRbnLBhXFyQ1lILYsKxJs"],
)  # fmt: skip
def test_digests_thumbprints_and_uuids_are_identifiers(text: str) -> None:
    assert is_identifier(text)


@pytest.mark.parametrize(
    "text",
    ["sales-reporting-eu-west-2026", "verify-full", "encrypted-credential", "deadbeef",
     "password authentication failed", "credential.created"],
)  # fmt: skip
def test_words_and_names_are_not_identifiers(text: str) -> None:
    assert not is_identifier(text)


def test_details_become_pairs_with_typed_values() -> None:
    shown = details_view({"count": 5, "stored": False, "tls_weakened_from": None,
                          "ids": "3f2a9c1e-5b7d-4e21-9a0c-d4e5f6a7b8c9,other-db"})  # fmt: skip
    assert shown.kind == "pairs"
    values = dict(shown.pairs)
    assert values["count"] == DetailValue("text", "5")
    assert values["stored"] == DetailValue("text", "false")
    assert values["tls_weakened_from"] == DetailValue("none", "none")
    listing = values["ids"]
    assert listing.kind == "listing"
    assert [item.kind for item in listing.items] == ["identifier", "text"]


def test_nested_values_are_laid_out_and_depth_is_bounded() -> None:
    shown = details_view({"a": {"b": [1, {"c": {"d": "deep"}}]}})
    inner = dict(shown.pairs)["a"]
    assert inner.kind == "pairs"
    items = dict(inner.pairs)["b"]
    assert items.kind == "items" and items.items[0] == DetailValue("text", "1")
    assert items.items[1] == DetailValue("text", '{"c": {"d": "deep"}}')  # past the depth


def test_details_that_were_not_json_show_as_stored() -> None:
    assert details_view("not {json") == DetailValue("text", "not {json")
