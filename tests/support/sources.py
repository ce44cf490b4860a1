"""The source adapters' fixtures and the personal values in them that must never pass."""

from __future__ import annotations

import re
from pathlib import Path

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sources"
KEY = b"test-key-of-the-source-adapters-32+bytes"

# Every personal value in the fixtures: names, phone numbers, addresses, postcodes, a BSN,
# e-mail addresses, subject lines and message text.
PERSONAL = {
    "asterisk": [
        "0612345678", "0725678901", "0687654321", "31725678901", "0229123456", "0251987654",
        "0622334455", "0633445566", "0644556677", "0655667788", "0666778899",
        "Jan de Vries", "Petra Bakker",
    ],
    "email": [
        "jan.jansen", "example.nl", "Jan Jansen", "Jansen", "0612345678", "Dorpsstraat",
        "1851 AB", "Lantaarnpaal", "lantaarnpaal", "Petra Bakker", "f.elamrani", "el Amrani",
        "111222333", "Breelaan", "1861 GC", "parkeervergunning", "piet@example.nl",
        "CAK7x1q", "0d1f2e3c4b5a", "ack-20261124-0001", "answer-20261125-0042",
    ],
    "open311": [
        "638344", "638345", "638400", "De Boer", "de-boer", "0612345678", "Dorpsstraat",
        "1851 AB", "Kees Visser", "0725331234", "Kennemerstraatweg", "1851 BG", "Ahmed Yilmaz",
        "0687654321", "Het Loo", "1852 CD", "52.600102", "4.702311", "Westerweg",
        "Losliggende", "Zwerfafval",
    ],
}  # fmt: skip


def personal_values_in(blob: str, adapter: str) -> list[str]:
    """The fixture's personal values found in `blob` (digits also without separators)."""
    digits = re.sub(r"[\s\-+().]", "", blob)
    found = []
    for value in PERSONAL[adapter]:
        if value.isdigit():
            # A number on its own, not a piece of a longer one: a time's microseconds
            # (`09:15:39.638344`) hold any six digits now and then.
            if re.search(rf"(?<![\d.]){value}(?!\d)", blob) or re.search(
                rf"(?<!\d){value}(?!\d)", digits
            ):
                found.append(value)
        elif value.lower() in blob.lower():
            found.append(value)
    return found
