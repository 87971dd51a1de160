"""Fixtures shared by the integration tests: daemons started per test (or
per module where a test only reads) and stopped with a checked SIGTERM."""

import pytest

from iamharness import Iam


def _stop_all(instances):
    """Stop every instance, then re-raise the first failure."""
    first = None
    for inst in instances:
        try:
            inst.stop()
        except BaseException as e:  # noqa: B902 - pytest.fail raises a BaseException
            first = first or e
            inst.daemon.kill()
    if first is not None:
        raise first


@pytest.fixture
def iam_factory(tmp_path):
    """make(name="iam", args=(), start=True) -> a new Iam in its own
    directory under tmp_path; every one is stopped (exit 0 checked) after
    the test."""
    made = []

    def make(name="iam", args=(), start=True):
        workdir = tmp_path / name
        workdir.mkdir()
        inst = Iam(workdir, extra_args=args)
        made.append(inst)
        if start:
            inst.start()
        return inst

    yield make
    _stop_all(made)


@pytest.fixture
def iam(iam_factory):
    """A fresh IAM daemon with default options."""
    return iam_factory()


@pytest.fixture(scope="module")
def iam_shared(tmp_path_factory):
    """One IAM daemon for a whole module, for tests that create their own
    uniquely named objects and do not depend on global state."""
    inst = Iam(tmp_path_factory.mktemp("iam-shared"))
    inst.start()
    yield inst
    _stop_all([inst])
