from __future__ import annotations

import pytest

from normwacht.catalogue_file import load
from normwacht.core.catalogue import Catalogue


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    """The packaged catalogue: the norms as the product ships them."""
    return load()
