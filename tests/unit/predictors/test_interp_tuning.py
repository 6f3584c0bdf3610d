"""The interp predictor's tuning modes."""

from __future__ import annotations

import numpy as np


def test_tune_modes_search_what_they_say_and_keep_fixed_options():
    from srnsz.predictors.interp import (
        FAST_KINDS,
        LEVEL_BOUND_OPTIONS,
        LONE_SLACK_OPTIONS,
        ROUND_BIAS_OPTIONS,
        SIZE_KINDS,
        InterpPredictor,
        code_orders,
    )

    fast, best = InterpPredictor("fast")._tuning_stages(3), InterpPredictor("best")._tuning_stages(3)
    assert [o["kind"] for o in fast[0]] == list(FAST_KINDS) and [o["kind"] for o in best[0]] == list(SIZE_KINDS)
    # the psnr mode adds the quintic spline, and at low rates lone codes and the dead zone (first) and level-wise
    # bounds
    high, low = (InterpPredictor("fast")._tuning_stages(3, for_psnr=True, low_rate=r) for r in (False, True))
    assert [o["kind"] for o in high[0]] == [*FAST_KINDS, "quintic"] and len(high) == 2
    assert low[0] == [{}, *LONE_SLACK_OPTIONS] and low[1] == list(ROUND_BIAS_OPTIONS)
    assert low[2:4] == high and low[4] == [{}, *LEVEL_BOUND_OPTIONS]
    assert len(InterpPredictor("fast", round_bias=0.1)._tuning_stages(3, for_psnr=True, low_rate=True)) == 4
    assert len(InterpPredictor("fast", round_bias=0.1, lone_slack=0.0)._tuning_stages(3, for_psnr=True,
                                                                                      low_rate=True)) == 3
    assert len(fast) == 2 and fast[1] == best[1]  # traversal and order; level-wise bounds only in best
    assert best[2] == [{}, *LEVEL_BOUND_OPTIONS]
    fixed = InterpPredictor("best", kind="cubic", alpha=1.5)._tuning_stages(3)
    assert len(fixed) == 1 and all(o.keys() == {"traversal", "dim_order"} for o in fixed[0])
    # where the mean screen passes axes: a mean after the spline and traversal, then the other code orders
    screened = InterpPredictor("fast")._tuning_stages(3, mean_axes=[2, 0])
    assert screened[:2] == fast and screened[2] == [{}, {"mean_axis": 2}, {"mean_axis": 0}]
    assert screened[3] == [{}, *({"code_order": o} for o in code_orders(3))] and len(screened) == 4
    assert code_orders(3) == [(1, 2, 0), (0, 2, 1)] and code_orders(2) == [(1, 0)]
    assert len(InterpPredictor("fast", mean_axis=None)._tuning_stages(3, mean_axes=[0])) == 3
    plain = InterpPredictor("off")
    assert plain.tuned(np.zeros((4, 4, 4)), 1.0) is plain
