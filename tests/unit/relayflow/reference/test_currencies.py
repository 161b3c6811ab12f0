"""Money in the reference app: ISO 4217 codes only, and an approval threshold per currency."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from relayflow.config import SettingError, Settings
from relayflow.reference.app import APP
from relayflow.reference.currencies import CURRENCIES, LIST_PUBLISHED, is_currency
from relayflow.reference.events import OrderPlaced
from relayflow.reference.settings import ReferenceSettings, parse_thresholds
from schemas.codec import DecodeError
from schemas.dead_letters import DlqReason
from tests.helpers.support import order_placed

CODEC = APP.codec()


def test_the_list_is_iso_4217_list_one_without_the_codes_for_no_currency() -> None:
    assert {"EUR", "USD", "JPY", "CHF", "GBP", "XAU"} <= CURRENCIES
    assert not {"XXX", "XTS", "ABC", "EUD", "eur"} & CURRENCIES
    assert len(CURRENCIES) > 150
    assert LIST_PUBLISHED.year >= 2026


@pytest.mark.parametrize("code", ["ABC", "ZZZ", "XXX", "XTS", "DEM"])
def test_an_order_in_an_unknown_currency_is_invalid_and_the_error_names_the_field(
        code: str) -> None:
    fields = order_placed().model_dump() | {"currency": code}
    with pytest.raises(ValidationError) as invalid:
        OrderPlaced.model_validate(fields)
    [error] = invalid.value.errors()
    assert error["loc"] == ("currency",)
    assert f"{code!r} is not an ISO 4217 currency code" in error["msg"]


def test_a_record_in_an_unknown_currency_decodes_to_invalid_event() -> None:
    # Encoded by a producer that does not validate (Avro has only a string for it).
    unchecked = order_placed().model_copy(update={"currency": "ABC"})  # not validated
    with pytest.raises(DecodeError) as refused:
        CODEC.decode(CODEC.encode(unchecked))
    assert refused.value.reason is DlqReason.INVALID_EVENT
    assert "currency" in str(refused.value)
    assert "'ABC' is not an ISO 4217 currency code" in str(refused.value)
    for code in ("EUR", "JPY", "USD"):
        order = order_placed(currency=code)
        assert CODEC.decode(CODEC.encode(order)) == order


def test_thresholds_parse_and_eur_comes_from_the_single_threshold_unless_named() -> None:
    assert parse_thresholds("") == {}
    assert parse_thresholds(" USD=110000, JPY = 15000000 ") == {"USD": 110_000,
                                                                 "JPY": 15_000_000}
    settings = Settings()
    read = ReferenceSettings.of(settings, approval_threshold_cents=90_000,
                                approval_thresholds="USD=110000,JPY=15000000")
    assert read.thresholds_cents == {"EUR": 90_000, "USD": 110_000, "JPY": 15_000_000}
    named = ReferenceSettings.of(settings, approval_thresholds="EUR=120000")
    assert named.thresholds_cents == {"EUR": 120_000}
    assert ReferenceSettings.of(settings).thresholds_cents == {"EUR": 100_000}


@pytest.mark.parametrize(("text", "problem"), [
    ("USD", "'USD' is not CODE=AMOUNT"),
    ("USD=1.5", "'USD=1.5' is not CODE=AMOUNT"),
    ("USD=-5", "'USD=-5' is not CODE=AMOUNT"),
    ("ABC=100", "'ABC' is not an ISO 4217 currency code"),
    ("usd=100", "'usd' is not an ISO 4217 currency code"),
    ("USD=1,USD=2", "USD is given twice"),
])
def test_a_bad_threshold_is_one_line_naming_the_setting(text: str, problem: str) -> None:
    with pytest.raises(SettingError) as refused:
        ReferenceSettings.of(Settings(), approval_thresholds=text)
    assert str(refused.value) == f"RELAYFLOW_APPROVAL_THRESHOLDS: {problem}" + (
        " (a whole number of minor units)" if "CODE=AMOUNT" in problem else "")


def test_is_currency_is_exact() -> None:
    assert is_currency("JPY")
    assert not is_currency("jpy")
    assert not is_currency("JPY ")
