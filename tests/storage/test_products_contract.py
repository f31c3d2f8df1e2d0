"""The storage contract for stability profiles, products and lots, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import msgspec
import pytest

from coldchain.domain.profiles import AlarmRule, MktSettings, Profile
from coldchain.storage import AlreadyExists, Store

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

HEAT = AlarmRule(
    name="heat", direction="above", threshold=8.0, inclusive=True, mode="cumulative", delay_min=60, action="quarantine"
)
FRIDGE = Profile(id="fridge", name="2-8 °C fridge", label_range_c=(2.0, 8.0), rules=(HEAT,), mkt=MktSettings())


async def new_organisation(store: Store, name: str = "Pharma GmbH") -> int:
    async with store.transaction() as tx:
        org = await tx.create_organisation(name=name, kind="shipper", now=NOW)
    return org.id


async def test_a_first_profile_is_stored_as_version_one_and_reads_back_equal(store: Store) -> None:
    async with store.transaction() as tx:
        stored, new = await tx.save_profile_version(FRIDGE, now=NOW)
    assert (stored, new) == (FRIDGE, True)
    async with store.transaction() as tx:
        assert await tx.latest_profile("fridge") == FRIDGE
        assert await tx.profile_version("fridge", 1) == FRIDGE


async def test_an_unchanged_profile_keeps_its_version(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.save_profile_version(FRIDGE, now=NOW)
    async with store.transaction() as tx:
        stored, new = await tx.save_profile_version(FRIDGE, now=NOW + timedelta(hours=1))
    assert (stored.version, new) == (1, False)


async def test_a_changed_profile_becomes_the_next_version_and_the_earlier_one_stays(store: Store) -> None:
    warmer = msgspec.structs.replace(FRIDGE, label_range_c=(2.0, 25.0))
    async with store.transaction() as tx:
        await tx.save_profile_version(FRIDGE, now=NOW)
        second, _ = await tx.save_profile_version(warmer, now=NOW)
        third, _ = await tx.save_profile_version(FRIDGE, now=NOW)
    assert (second.version, third.version) == (2, 3)
    async with store.transaction() as tx:
        assert await tx.profile_version("fridge", 1) == FRIDGE
        assert await tx.profile_version("fridge", 2) == msgspec.structs.replace(warmer, version=2)
        latest = await tx.latest_profile("fridge")
        assert latest == msgspec.structs.replace(FRIDGE, version=3)
        assert await tx.profile_version("fridge", 4) is None


async def test_the_version_a_caller_puts_in_a_profile_is_ignored(store: Store) -> None:
    async with store.transaction() as tx:
        stored, _ = await tx.save_profile_version(msgspec.structs.replace(FRIDGE, version=7), now=NOW)
    assert stored == FRIDGE


async def test_listing_profiles_gives_the_latest_version_of_each_by_id(store: Store) -> None:
    freezer = Profile(id="freezer", name="frozen", label_range_c=(-25.0, -15.0))
    async with store.transaction() as tx:
        await tx.save_profile_version(freezer, now=NOW)
        await tx.save_profile_version(FRIDGE, now=NOW)
        await tx.save_profile_version(msgspec.structs.replace(FRIDGE, name="renamed"), now=NOW)
    async with store.transaction() as tx:
        listed = await tx.list_profiles()
    assert [(p.id, p.version, p.name) for p in listed] == [("freezer", 1, "frozen"), ("fridge", 2, "renamed")]


async def test_an_unknown_profile_is_none(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.latest_profile("nope") is None
        assert await tx.list_profiles() == []


async def test_a_product_reads_back_as_created(store: Store) -> None:
    org = await new_organisation(store)
    async with store.transaction() as tx:
        product = await tx.create_product(
            organisation_id=org, name="Vaccine X", gtin="04012345678901", profile_id="fridge", now=NOW
        )
    async with store.transaction() as tx:
        assert await tx.get_product(product.id) == product
        assert await tx.get_product(product.id + 1000) is None
    assert (product.organisation_id, product.name, product.gtin, product.profile_id) == (
        org,
        "Vaccine X",
        "04012345678901",
        "fridge",
    )
    assert product.created_at == NOW


async def test_a_second_product_of_the_same_name_in_one_organisation_is_refused(store: Store) -> None:
    org = await new_organisation(store)
    other = await new_organisation(store, "Other AG")
    async with store.transaction() as tx:
        await tx.create_product(organisation_id=org, name="Insulin", gtin=None, profile_id=None, now=NOW)
        await tx.create_product(organisation_id=other, name="Insulin", gtin=None, profile_id=None, now=NOW)
    with pytest.raises(AlreadyExists):
        async with store.transaction() as tx:
            await tx.create_product(organisation_id=org, name="Insulin", gtin=None, profile_id=None, now=NOW)


async def test_products_are_listed_per_organisation_or_all_by_id(store: Store) -> None:
    org = await new_organisation(store)
    other = await new_organisation(store, "Other AG")
    async with store.transaction() as tx:
        a = await tx.create_product(organisation_id=org, name="A", gtin=None, profile_id=None, now=NOW)
        b = await tx.create_product(organisation_id=other, name="B", gtin=None, profile_id=None, now=NOW)
        c = await tx.create_product(organisation_id=org, name="C", gtin=None, profile_id=None, now=NOW)
    async with store.transaction() as tx:
        assert await tx.list_products(org) == [a, c]
        assert await tx.list_products(other) == [b]
        assert await tx.list_products() == [a, b, c]


async def test_lots_read_back_with_their_expiry_date_and_are_unique_per_product(store: Store) -> None:
    org = await new_organisation(store)
    async with store.transaction() as tx:
        product = await tx.create_product(organisation_id=org, name="A", gtin=None, profile_id=None, now=NOW)
        dated = await tx.create_lot(product_id=product.id, lot_number="L1", expires_on=date(2027, 6, 30), now=NOW)
        undated = await tx.create_lot(product_id=product.id, lot_number="L2", expires_on=None, now=NOW)
    async with store.transaction() as tx:
        assert await tx.get_lot(dated.id) == dated
        assert await tx.get_lot(dated.id + 1000) is None
        assert await tx.list_lots(product.id) == [dated, undated]
    assert dated.expires_on == date(2027, 6, 30)
    with pytest.raises(AlreadyExists):
        async with store.transaction() as tx:
            await tx.create_lot(product_id=product.id, lot_number="L1", expires_on=None, now=NOW)
