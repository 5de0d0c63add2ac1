import pytest

from pipelines.config import (
    PRESETS,
    PROFILES,
    ConfigError,
    all_setting_keys,
    resolve_config,
)


def test_defaults_and_sources():
    r = resolve_config(None, None, {})
    assert r.profile == "balanced"
    assert r.config.detect_track.detect_fps == 5.0
    assert r.sources["detect_track.detect_fps"] == "default"


def test_precedence_request_over_env_over_profile_over_default():
    env = {"SCREENALYTICS_DETECT_TRACK__DETECT_FPS": "4", "SCREENALYTICS_FACES_EMBED__MAX_FACES_PER_TRACK": "7"}
    r = resolve_config("low_power", {"detect_track.detect_fps": 8}, env)
    assert r.config.detect_track.detect_fps == 8 and r.sources["detect_track.detect_fps"] == "request"
    assert r.config.faces_embed.max_faces_per_track == 7 and r.sources["faces_embed.max_faces_per_track"] == "env"
    r2 = resolve_config("low_power", None, {})
    assert r2.config.detect_track.detect_fps == 3.0 and r2.sources["detect_track.detect_fps"] == "profile:low_power"


def test_profile_from_environment():
    assert resolve_config(None, None, {"SCREENALYTICS_PROFILE": "high_accuracy"}).profile == "high_accuracy"


def test_preset_fills_screentime_and_request_beats_it():
    r = resolve_config(None, {"screentime.preset": "stricter", "screentime.gap_tolerance_s": 0.2}, {})
    assert r.config.screentime.mode == PRESETS["stricter"]["mode"]
    assert r.config.screentime.gap_tolerance_s == 0.2


def test_nested_overrides_accepted():
    assert resolve_config(None, {"cluster": {"knn": 8}}, {}).config.cluster.knn == 8


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"profile": "turbo"}, "unknown profile"),
        ({"overrides": {"detect_track.nope": 1}}, "unknown setting 'detect_track.nope'"),
        ({"overrides": {"detect_track.detect_fps": -1}}, "detect_track.detect_fps"),
        ({"overrides": {"screentime.preset": "lenient"}}, "unknown screen-time preset"),
    ],
)
def test_bad_settings_name_the_problem(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(kwargs.get("profile"), kwargs.get("overrides"), {})


def test_every_profile_key_is_a_real_setting():
    keys = set(all_setting_keys())
    for profile in PROFILES.values():
        assert set(profile) <= keys
