"""Weight modifier, clip and remap configs: aihwkit 1.2.0's defaults, validation, round trip."""

import pytest

from rpusim.configs import (WeightClipParameter, WeightClipType, WeightModifierParameter,
                            WeightModifierType, WeightRemapParameter, WeightRemapType,
                            config_from_dict)

# aihwkit 1.2.0's defaults, as listed in spec/inference.md section 1 (read from aihwkit)
MODIFIER_DEFAULTS = dict(
    std_dev=0.0, per_batch_sample=False, res=0.0, sto_round=False, dorefa_clip=0.6, pdrop=0.0,
    enable_during_test=False, rel_to_actual_wmax=True, assumed_wmax=1.0, copy_last_column=False,
    coeffs=[0.0105392, 0.0768, -0.046925], type=WeightModifierType.NONE, g_max=25.0,
    pcm_zero_thres=0.0, pcm_t_inference=0.0, pcm_prob_at_reset=0.0, pcm_prob_at_gmax=0.0,
    pcm_prob_at_random=0.0, pcm_t0=20.0)


def test_modifier_defaults():
    assert vars(WeightModifierParameter()) == MODIFIER_DEFAULTS


def test_clip_and_remap_defaults():
    assert vars(WeightClipParameter()) == dict(fixed_value=-1.0, sigma=2.5,
                                               type=WeightClipType.NONE)
    assert vars(WeightRemapParameter()) == dict(remapped_wmax=1.0, max_scale_range=0.0,
                                                max_scale_ref=0.0, type=WeightRemapType.NONE)


def test_enum_members_and_values():
    assert [m.name for m in WeightModifierType] == [
        "NONE", "DISCRETIZE", "MULT_NORMAL", "ADD_NORMAL", "DISCRETIZE_ADD_NORMAL", "DOREFA",
        "POLY", "PCM_NOISE", "PROG_NOISE", "DROP_CONNECT", "COPY"]
    assert [m.name for m in WeightClipType] == [
        "NONE", "FIXED_VALUE", "LAYER_GAUSSIAN", "AVERAGE_CHANNEL_MAX"]
    assert [m.name for m in WeightRemapType] == [
        "NONE", "LAYERWISE_SYMMETRIC", "CHANNELWISE_SYMMETRIC"]
    assert WeightModifierType.DOREFA.value == "DoReFa"


@pytest.mark.parametrize("config", [
    WeightModifierParameter(type="Poly", coeffs=(0.1, 0.2), std_dev=0.05, pdrop=0.1),
    WeightClipParameter(type=WeightClipType.LAYER_GAUSSIAN, sigma=2.0),
    WeightRemapParameter(type="CHANNELWISE_SYMMETRIC", max_scale_range=4.0),
])
def test_round_trip(config):
    config.validate()
    assert config_from_dict(config.to_dict()) == config
    assert isinstance(config.type, (WeightModifierType, WeightClipType, WeightRemapType))


@pytest.mark.parametrize("cls, kwargs, exc, words", [
    (WeightModifierParameter, dict(pdrop=1.5), ValueError, "pdrop"),
    (WeightModifierParameter, dict(std_dev=-0.1), ValueError, "std_dev"),
    (WeightModifierParameter, dict(res=-1), ValueError, "res"),
    (WeightModifierParameter, dict(assumed_wmax=0.0), ValueError, "assumed_wmax"),
    (WeightModifierParameter, dict(type="Gauss"), ValueError, "WeightModifierType"),
    (WeightModifierParameter, dict(coeffs=[1.0, "a"]), ValueError, "coeffs"),
    (WeightModifierParameter, dict(coeffs=3.0), TypeError, "coeffs"),
    (WeightModifierParameter, dict(sto_round=1), TypeError, "sto_round"),
    (WeightClipParameter, dict(sigma=-1.0), ValueError, "sigma"),
    (WeightClipParameter, dict(fixed_value=float("nan")), ValueError, "fixed_value"),
    (WeightRemapParameter, dict(remapped_wmax=0.0), ValueError, "remapped_wmax"),
    (WeightRemapParameter, dict(type="ChannelwiseSymmetric", max_scale_range=2.0,
                                remapped_wmax=2.0), ValueError, "remapped_wmax"),
])
def test_bad_values_raise_naming_the_field(cls, kwargs, exc, words):
    with pytest.raises(exc, match=words):
        cls(**kwargs).validate()
