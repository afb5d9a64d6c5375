"""Shared test settings: hypothesis is deterministic and unhurried so CI never flakes."""
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "deltalab",
    derandomize=True,
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile("deltalab")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def parallel_sections(monkeypatch):
    """Records every deltalab.fast.threads parallel section run (its number of tasks)."""
    from deltalab.fast import threads

    calls = []
    real = threads.run_parallel

    def counting(tasks):
        calls.append(len(tasks))
        return real(tasks)

    monkeypatch.setattr(threads, "run_parallel", counting)
    return calls


@pytest.fixture
def float64_default():
    """New float tensors and parameters are float64 (deltalab's default is float32, as torch's):
    for tests that compare at float64 precision with tensors made from Python floats."""
    import deltalab as dl

    previous = dl.get_default_dtype()
    dl.set_default_dtype("float64")
    yield
    dl.set_default_dtype(previous)


@pytest.fixture(scope="session")
def example_pages():
    """Every built-in example as {name: (trace, HTML page)}, solved and rendered once per test run:
    drawing each page's computation graph with matplotlib is the slow part."""
    from deltalab import report
    from deltalab.examples import example_names, example_path
    from deltalab.problem import load_problem
    from deltalab.recorder import solve_problem

    pages = {}
    for name in example_names():
        trace = solve_problem(load_problem(example_path(name)))
        pages[name] = (trace, report.render(trace, "html"))
    return pages
