"""Unified social credit codes (GB 32100-2015) and GB/T 2260 region codes."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.validators import (
    CREDIT_CODE_ALPHABET,
    credit_code_check_char,
    is_valid_credit_code,
    is_valid_region_code,
    make_credit_code,
)

# Codes published by the companies themselves (site footers, filings); each one's
# check character agrees with GB 32100-2015, so they are independent test vectors.
PUBLISHED_CODES = [
    pytest.param("914403001922038216", id="huawei-technologies-shenzhen"),
    pytest.param("9144030071526726XG", id="tencent-technology-shenzhen"),
    pytest.param("91330100799655058B", id="alibaba-china-hangzhou"),
    pytest.param("91110108551385082Q", id="xiaomi-technology-beijing"),
    pytest.param("91110000802100433B", id="baidu-online-beijing"),
    pytest.param("911000001000013428", id="bank-of-china-national-registration"),
]

HUAWEI = "914403001922038216"


def _with_check(code17: str) -> str:
    return code17 + credit_code_check_char(code17)


def _replace(code: str, index: int, char: str) -> str:
    return code[:index] + char + code[index + 1 :]


# ---------------------------------------------------------------- check character


def test_check_char_worked_by_hand() -> None:
    # Huawei: values 9 1 4 4 0 3 0 0 1 9 2 2 0 3 8 2 1
    #         weights 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28
    # 9 + 3 + 36 + 108 + 0 + 78 + 0 + 0 + 20 + 261 + 50 + 26 + 0 + 72 + 80 + 60 + 28 = 831
    # 831 mod 31 = 25, 31 - 25 = 6 -> "6"
    assert credit_code_check_char(HUAWEI[:17]) == "6"


def test_check_char_maps_31_to_zero() -> None:
    # All zeros: sum 0, 31 - 0 = 31, which becomes 0.
    assert credit_code_check_char("0" * 17) == "0"


def test_check_char_uses_letter_values() -> None:
    # "Y" is worth 30; alone in position 1 (weight 1): 31 - 30 = 1.
    assert credit_code_check_char("Y" + "0" * 16) == "1"
    # "A" is worth 10 in position 2 (weight 3): 31 - 30 = 1.
    assert credit_code_check_char("0A" + "0" * 15) == "1"
    # 1 in position 1: 31 - 1 = 30 -> "Y", the last character of the alphabet.
    assert credit_code_check_char("1" + "0" * 16) == "Y"


@pytest.mark.parametrize("code", PUBLISHED_CODES)
def test_check_char_of_published_codes(code: str) -> None:
    assert credit_code_check_char(code[:17]) == code[17]


@pytest.mark.parametrize(
    "code17",
    [
        pytest.param("", id="empty"),
        pytest.param("9144030019220382", id="16-chars"),
        pytest.param("914403001922038216", id="18-chars"),
        pytest.param("9144030019220382I", id="letter-I"),
        pytest.param("9144030019220382O", id="letter-O"),
        pytest.param("914403001922038Z1", id="letter-Z"),
        pytest.param("91440300S92203821", id="letter-S"),
        pytest.param("9V440300192203821", id="letter-V"),
        pytest.param("9a440300192203821", id="lowercase"),
        pytest.param("91440300192203８21", id="fullwidth-digit"),
    ],
)
def test_check_char_rejects_bad_input(code17: str) -> None:
    with pytest.raises(ValueError, match=r"expected 17 characters|not in the credit code alphabet"):
        credit_code_check_char(code17)


# ---------------------------------------------------------------- whole codes


@pytest.mark.parametrize("code", PUBLISHED_CODES)
def test_published_codes_are_valid(code: str) -> None:
    assert is_valid_credit_code(code)


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(make_credit_code(), id="made-default"),
        pytest.param(make_credit_code("110108", 7), id="made-haidian"),
        pytest.param(make_credit_code("810000", 31**9 - 1), id="made-hong-kong-max-seed"),
        pytest.param(_with_check("Y1330108MA2H0XY31"), id="authority-Y"),
        pytest.param(_with_check("12330108MA2H0XY31"), id="authority-1-type-2"),
        pytest.param(_with_check("AB330108MA2H0XY31"), id="lenient-positions-1-2"),
    ],
)
def test_valid_codes(code: str) -> None:
    assert is_valid_credit_code(code)


@pytest.mark.parametrize(
    "code",
    [
        # wrong check character: every published code with its last character changed
        pytest.param(_replace(HUAWEI, 17, "7"), id="wrong-check-huawei"),
        pytest.param("9144030071526726XH", id="wrong-check-tencent"),
        pytest.param("91330100799655058C", id="wrong-check-alibaba"),
        pytest.param("911000001000013420", id="wrong-check-bank-of-china"),
        # a single substituted character in the body
        pytest.param(_replace(HUAWEI, 10, "3"), id="typo-in-body"),
        # two adjacent characters swapped
        pytest.param(HUAWEI[:9] + HUAWEI[10] + HUAWEI[9] + HUAWEI[11:], id="transposition"),
        # case: the API uppercases before calling; the validator itself does not
        pytest.param("9144030071526726xg", id="lowercase-tencent"),
        pytest.param("9144030071526726xG", id="mixed-case"),
        pytest.param("91330108ma2h0xy310", id="lowercase-body"),
        # length
        pytest.param("", id="empty"),
        pytest.param(HUAWEI[:17], id="17-chars"),
        pytest.param(HUAWEI + "0", id="19-chars"),
        pytest.param(" " + HUAWEI, id="leading-space"),
        pytest.param(HUAWEI + "\n", id="trailing-newline"),
        # forbidden letters, wherever they stand (the check character is irrelevant)
        pytest.param(_replace(HUAWEI, 17, "I"), id="I-as-check"),
        pytest.param(_replace(HUAWEI, 17, "O"), id="O-as-check"),
        pytest.param(_replace(HUAWEI, 17, "Z"), id="Z-as-check"),
        pytest.param(_replace(HUAWEI, 17, "S"), id="S-as-check"),
        pytest.param(_replace(HUAWEI, 17, "V"), id="V-as-check"),
        pytest.param(_replace(HUAWEI, 9, "I"), id="I-in-body"),
        pytest.param(_replace(HUAWEI, 12, "O"), id="O-in-body"),
        pytest.param(_replace(HUAWEI, 1, "Z"), id="Z-in-type"),
        pytest.param(_replace(HUAWEI, 0, "S"), id="S-in-authority"),
        pytest.param(_replace(HUAWEI, 16, "V"), id="V-in-body"),
        # characters outside ASCII
        pytest.param(_replace(HUAWEI, 8, "１"), id="fullwidth-digit"),
        pytest.param(_replace(HUAWEI, 8, "Ａ"), id="fullwidth-letter"),
        # positions 3-8 must be a region (correct check characters, so only the region fails)
        pytest.param(_with_check("91990000MA2H0XY31"), id="region-unknown-province-99"),
        pytest.param(_with_check("91000000MA2H0XY31"), id="region-all-zero"),
        pytest.param(_with_check("91A30108MA2H0XY31"), id="region-with-letter"),
        pytest.param(_with_check("91200000MA2H0XY31"), id="region-province-20"),
    ],
)
def test_invalid_codes(code: str) -> None:
    assert not is_valid_credit_code(code)


# ---------------------------------------------------------------- properties

_alphabet_chars = st.sampled_from(CREDIT_CODE_ALPHABET)
_region_codes = st.sampled_from(["330108", "330100", "110108", "440305", "650102", "820000"])
_prefixes = st.builds(
    lambda head, region, body: head + region + body,
    st.text(_alphabet_chars, min_size=2, max_size=2),
    _region_codes,
    st.text(_alphabet_chars, min_size=9, max_size=9),
)


@given(_prefixes)
def test_any_prefix_with_its_check_char_is_valid(code17: str) -> None:
    assert is_valid_credit_code(_with_check(code17))


@given(_prefixes, st.integers(min_value=0, max_value=16), _alphabet_chars)
def test_every_single_substitution_is_caught(code17: str, index: int, char: str) -> None:
    # 31 is prime and no weight is 0 mod 31, so changing one character changes the sum.
    code = _with_check(code17)
    altered = _replace(code, index, char)
    if altered != code:
        assert not is_valid_credit_code(altered)


@given(_prefixes, st.integers(min_value=0, max_value=15))
def test_every_adjacent_transposition_in_the_body_is_caught(code17: str, index: int) -> None:
    # Adjacent weights differ mod 31, so swapping two different characters changes the sum.
    code = _with_check(code17)
    swapped = code[:index] + code[index + 1] + code[index] + code[index + 2 :]
    if swapped != code:
        assert not is_valid_credit_code(swapped)


# ---------------------------------------------------------------- make_credit_code


def test_make_credit_code_shape() -> None:
    code = make_credit_code("330108", 12345)
    assert len(code) == 18
    assert code.startswith("91330108")
    assert is_valid_credit_code(code)


def test_make_credit_code_is_deterministic_and_distinct() -> None:
    assert make_credit_code(seed=5) == make_credit_code(seed=5)
    codes = {make_credit_code(seed=seed) for seed in range(2000)}
    assert len(codes) == 2000
    assert all(is_valid_credit_code(code) for code in codes)


@pytest.mark.parametrize(
    ("region", "seed"),
    [
        pytest.param("990000", 0, id="unknown-province"),
        pytest.param("33010", 0, id="5-digit-region"),
        pytest.param("330108", -1, id="negative-seed"),
    ],
)
def test_make_credit_code_rejects_bad_arguments(region: str, seed: int) -> None:
    with pytest.raises(ValueError, match=r"region code|seed"):
        make_credit_code(region, seed)


# ---------------------------------------------------------------- region codes


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("330108", id="binjiang"),
        pytest.param("330100", id="hangzhou"),
        pytest.param("330000", id="zhejiang"),
        pytest.param("110000", id="beijing"),
        pytest.param("110108", id="haidian"),
        pytest.param("440305", id="nanshan-shenzhen"),
        pytest.param("500000", id="chongqing"),
        pytest.param("540000", id="tibet"),
        pytest.param("650102", id="urumqi-tianshan"),
        pytest.param("710000", id="taiwan"),
        pytest.param("810000", id="hong-kong"),
        pytest.param("820000", id="macao"),
        pytest.param("330199", id="unlisted-district-in-known-province"),
    ],
)
def test_valid_region_codes(code: str) -> None:
    assert is_valid_region_code(code)


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("", id="empty"),
        pytest.param("33010", id="5-digits"),
        pytest.param("3301080", id="7-digits"),
        pytest.param("3301", id="city-prefix-only"),
        pytest.param("33", id="province-prefix-only"),
        pytest.param("990000", id="unknown-province-99"),
        pytest.param("991234", id="unknown-province-99-with-district"),
        pytest.param("000000", id="all-zeros"),
        pytest.param("100000", id="national-level-is-not-a-region"),
        pytest.param("200000", id="unknown-province-20"),
        pytest.param("720000", id="unknown-province-72"),
        pytest.param("83010A", id="letter"),
        pytest.param("ABCDEF", id="letters"),
        pytest.param("33O108", id="letter-O-for-zero"),
        pytest.param("３３０１０８", id="fullwidth-digits"),
        pytest.param("٣٣٠١٠٨", id="arabic-indic-digits"),
        pytest.param(" 330108", id="leading-space"),
        pytest.param("330108 ", id="trailing-space"),
        pytest.param("+33010", id="sign"),
        pytest.param("33-108", id="dash"),
    ],
)
def test_invalid_region_codes(code: str) -> None:
    assert not is_valid_region_code(code)
