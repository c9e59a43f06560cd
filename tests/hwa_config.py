"""The inference config of the hardware-aware training tests."""

from rpusim.configs import InferenceRPUConfig


def hwa_config(**fields):
    """An ``InferenceRPUConfig`` with ``fields`` set and drift compensation off, so that
    test-mode outputs are not multiplied by alpha."""
    config = InferenceRPUConfig(drift_compensation=None)
    for name, value in fields.items():
        setattr(config, name, value)
    return config
