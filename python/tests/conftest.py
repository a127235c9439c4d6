from __future__ import annotations

import json
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
SHARED_SPEC = REPO.parent / "shared" / "spec"


def load_vectors(name: str):
    return json.loads((DATA / name).read_text())


@pytest.fixture(scope="session")
def spiffe_vectors():
    return load_vectors("spiffe-ids.json")
