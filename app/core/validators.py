"""Pure checks for Chinese identifiers: unified social credit codes and region codes.

Unified social credit code (统一社会信用代码), GB 32100-2015: 18 characters from a
31-character alphabet (the digits and the capitals without I, O, Z, S, V).

    position 1      registration authority (1 机构编制, 5 民政, 9 工商, Y 其他 ...)
    position 2      organisation type
    positions 3-8   registration authority's administrative division (GB/T 2260)
    positions 9-17  organisation code body
    position 18     check character

The check character is computed over positions 1-17 with the weights
3^(i-1) mod 31: value = 31 - (sum(value_i * weight_i) mod 31), a value of 31
becomes 0, and the result maps back through the alphabet.

We check the alphabet, the length, the six region digits and the check
character. Positions 3-8 must be a region code (see below) or ``100000``, the
code that organisations registered with a national-level authority carry (the
Bank of China's code is 911000001000013428). Positions 1-2 only have to be in
the alphabet, since the catalogue
of authority and type codes grows over time and a check character already
catches the common typos. Input is expected uppercase: the API uppercases
before calling, and lowercase here is rejected rather than silently fixed.

Region codes (GB/T 2260): six ASCII digits whose first two name a known
province-level division (including 71 Taiwan, 81 Hong Kong, 82 Macao).
"""

from typing import Final

CREDIT_CODE_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_LENGTH: Final = 18
CREDIT_CODE_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

_VALUE: Final = {char: index for index, char in enumerate(CREDIT_CODE_ALPHABET)}
_MODULUS: Final = len(CREDIT_CODE_ALPHABET)  # 31
_DIGITS: Final = frozenset("0123456789")
# Positions 3-8 of codes issued by national-level registration authorities.
NATIONAL_REGISTRATION_CODE: Final = "100000"

PROVINCE_CODES: Final = frozenset(
    {
        "11", "12", "13", "14", "15",  # 北京 天津 河北 山西 内蒙古
        "21", "22", "23",  # 辽宁 吉林 黑龙江
        "31", "32", "33", "34", "35", "36", "37",  # 上海 江苏 浙江 安徽 福建 江西 山东
        "41", "42", "43", "44", "45", "46",  # 河南 湖北 湖南 广东 广西 海南
        "50", "51", "52", "53", "54",  # 重庆 四川 贵州 云南 西藏
        "61", "62", "63", "64", "65",  # 陕西 甘肃 青海 宁夏 新疆
        "71", "81", "82",  # 台湾 香港 澳门
    }
)  # fmt: skip


def _is_ascii_digits(text: str, length: int) -> bool:
    return len(text) == length and all(char in _DIGITS for char in text)


def is_valid_region_code(code: str) -> bool:
    """Six ASCII digits whose first two are a province-level code of GB/T 2260."""
    return _is_ascii_digits(code, 6) and code[:2] in PROVINCE_CODES


def credit_code_check_char(code17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters of a code.

    Raises ValueError if `code17` is not 17 characters of the code alphabet.
    """
    if len(code17) != CREDIT_CODE_LENGTH - 1:
        raise ValueError(f"expected 17 characters, got {len(code17)}")
    total = 0
    for char, weight in zip(code17, CREDIT_CODE_WEIGHTS, strict=True):
        value = _VALUE.get(char)
        if value is None:
            raise ValueError(f"character {char!r} is not in the credit code alphabet")
        total += value * weight
    check = _MODULUS - total % _MODULUS
    return CREDIT_CODE_ALPHABET[0 if check == _MODULUS else check]


def is_valid_credit_code(code: str) -> bool:
    """True if `code` is an 18-character uppercase unified social credit code.

    Checks the alphabet, that positions 3-8 are a region code (or the national-level
    ``100000``), and the check character.
    """
    if len(code) != CREDIT_CODE_LENGTH:
        return False
    if any(char not in _VALUE for char in code):
        return False
    region = code[2:8]
    if region != NATIONAL_REGISTRATION_CODE and not is_valid_region_code(region):
        return False
    return credit_code_check_char(code[:17]) == code[17]


def make_credit_code(region: str = "330108", seed: int = 0) -> str:
    """Build a valid code "91" + region + 9 seed-derived characters + check character.

    For tests and demo data: distinct non-negative seeds below 31**9 give distinct codes.
    """
    if not is_valid_region_code(region):
        raise ValueError(f"not a valid region code: {region!r}")
    if seed < 0:
        raise ValueError("seed must be non-negative")
    body = []
    remaining = seed
    for _ in range(9):
        remaining, digit = divmod(remaining, _MODULUS)
        body.append(CREDIT_CODE_ALPHABET[digit])
    code17 = "91" + region + "".join(reversed(body))
    return code17 + credit_code_check_char(code17)
