"""The live knobs come from the profile's `live:` section; a CLI flag given on top wins."""
from config.loader import load_profile
from live.options import LiveOptions


def test_the_profile_sets_the_live_options_and_a_flag_overrides_one():
    profile = load_profile("live-local")
    live = profile.live.model_copy(update={"kill_policy": "freeze", "band_bps": 25.0, "kill_on": ("daily_loss",),
                                           "reconcile_s": 5.0, "kill_deadline_s": 20.0})
    options = LiveOptions.from_profile(live)
    assert (options.kill_policy, options.band_bps, options.kill_on, options.reconcile_s, options.kill_deadline_s) == (
        "freeze", 25.0, ("daily_loss",), 5.0, 20.0)
    assert options.desk_options() == {"order_style": "limit_ioc", "band_bps": 25.0, "kill_on": ("daily_loss",)}
    assert LiveOptions.from_profile(live, kill_policy="flatten").kill_policy == "flatten"
    assert LiveOptions.from_profile(live, kill_policy=None).kill_policy == "freeze"     # no flag: the profile's


def test_the_shipped_knobs_are_the_code_defaults_and_no_section_gets_them_too():
    options = LiveOptions.from_profile(load_profile("live-local").live)
    assert options == LiveOptions()
    assert LiveOptions.from_profile(None) == LiveOptions()
