import warnings

import pytest

from deepfrack.workload.loaders import ChainWarning


@pytest.fixture(autouse=True)
def _quiet_chain_warnings():
    """Problem-file folders warn that their layers do not chain; tests that check it use pytest.warns."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ChainWarning)
        yield
