"""Multi-device tests run in their own pytest process: `python -m pytest tests/multidevice -q`.

The 8 virtual CPU devices must be requested right after `import jax`, before any JAX op
(specs/jax_practice.md §11); the unit suite keeps its single device.
"""
import jax

jax.config.update("jax_num_cpu_devices", 8)

import pytest  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long or multi-process tests")


@pytest.fixture(scope="session")
def devices8():
    if jax.device_count() != 8:
        pytest.fail("run tests/multidevice in its own pytest process: another test initialised JAX first")
    return jax.devices()
