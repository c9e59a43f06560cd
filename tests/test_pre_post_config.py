"""The ``pre_post`` config fields: validation and dict round trip."""

import pytest

from rpusim.configs import (InferenceRPUConfig, InputRangeParameter, IOParameters,
                            NoiseManagementType, BoundManagementType,
                            PrePostProcessingParameter, SingleRPUConfig, config_from_dict)
from rpusim.presets import StandardHWATrainingPreset


@pytest.mark.parametrize("name, value, error", [
    ("enable", 1, TypeError),
    ("init_value", 0.0, ValueError),
    ("init_from_data", -1, ValueError),
    ("init_from_data", 2.5, TypeError),
    ("init_std_alpha", -1.0, ValueError),
    ("decay", -0.1, ValueError),
    ("input_min_percentage", 1.5, ValueError),
    ("output_min_percentage", -0.5, ValueError),
    ("gradient_scale", float("nan"), ValueError),
    ("calibration_info", 3, TypeError),
])
def test_invalid_input_range_is_refused(name, value, error):
    config = SingleRPUConfig()
    setattr(config.pre_post.input_range, name, value)
    with pytest.raises(error, match=name):
        config.validate()


def test_pre_post_must_be_the_parameter_class():
    with pytest.raises(TypeError, match="pre_post"):
        SingleRPUConfig(pre_post=InputRangeParameter()).validate()


def test_round_trip_keeps_the_input_range():
    config = StandardHWATrainingPreset()
    config.pre_post.input_range.calibration_info = "cache"
    config.validate()
    back = config_from_dict(config.to_dict())
    assert back.pre_post == config.pre_post
    assert back.pre_post.input_range.enable is True


def test_supports_manage_output_clipping():
    check = InputRangeParameter.supports_manage_output_clipping
    assert not check(InferenceRPUConfig(forward=IOParameters(is_perfect=True)))
    assert not check(InferenceRPUConfig())          # noise management ABS_MAX by default
    plain = IOParameters(noise_management=NoiseManagementType.NONE,
                         bound_management=BoundManagementType.NONE)
    assert check(InferenceRPUConfig(forward=plain))
    assert isinstance(PrePostProcessingParameter().input_range, InputRangeParameter)
