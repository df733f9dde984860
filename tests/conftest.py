import warnings

import pytest

from deepfrack.workload.loaders import ChainWarning


@pytest.fixture(autouse=True)
def _quiet_chain_warnings():
    """Problem-file folders warn that their layers do not chain; tests that check it use pytest.warns."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ChainWarning)
        yield


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """No test writes the user's result cache (~/.cache/deepfrack): the default cache lives in a
    temporary folder (commands run in subprocesses inherit it)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))
    monkeypatch.delenv("DEEPFRACK_CACHE", raising=False)
