"""Fixtures for the quorum TLS tests: one set of test certificates per session."""

from __future__ import annotations

import pytest

from tests.tls.certs import Pki, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))
