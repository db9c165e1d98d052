"""``auto``'s cost model (pargs/decoding/path_costs.py): estimates worked by hand with round constants, the real
constants against the H200 measurements they come from, and the choices they make in the regimes that matter."""

import pytest

import pargs.decoding.path_costs as costs

ROUND = {  # constants that make the estimates easy to work by hand
    "EAGER_STEP_SECONDS": 2e-3,
    "EAGER_LAYER_STEP_SECONDS": 1e-3,
    "WEIGHT_BYTES_PER_SECOND": 1e12,
    "GRAPHS_STEP_SECONDS": 1e-3,
    "GRAPHS_LAYER_STEP_SECONDS": 1e-4,
    "COMPILED_LAYER_STEP_SAVING": 5e-5,
    "CAPTURE_SECONDS": 1.0,
    "COMPILE_SECONDS": 10.0,
    "COMPILE_LAYER_SECONDS": 1.0,
}


@pytest.fixture
def round_constants(monkeypatch):
    for name, value in ROUND.items():
        monkeypatch.setattr(costs, name, value)


def test_step_and_first_call_seconds_by_hand(round_constants):
    # 2 layers, no weights to speak of: eager 2 + 2 x 1 ms; graphs 1 + 2 x 0.1 ms; compiled 1.2 - 2 x 0.05 ms
    assert costs.step_seconds(2, 0) == pytest.approx({"eager": 4e-3, "graphs": 1.2e-3, "compiled": 1.1e-3})
    # 32 layers, 12 GB: weights 12 ms; graphs 12 + 1 + 3.2 = 16.2 ms; eager 2 + 32 = 34 ms; compiled 16.2 - 1.6 ms
    assert costs.step_seconds(32, 12e9) == pytest.approx({"eager": 34e-3, "graphs": 16.2e-3, "compiled": 14.6e-3})
    # the device's work bounds an eager step from below: 1 layer and 1 TB of weights (1 s to read)
    assert costs.step_seconds(1, 1e12)["eager"] == pytest.approx(1.0011)
    assert costs.first_call_seconds(32) == {"eager": 0.0, "graphs": 1.0, "compiled": 42.0}
    # 10 calls of 32 steps of the 2-layer models: eager 10 x 32 x 4 ms; graphs 1 + 10 x 32 x 1.2 ms; compiled 12 + ...
    assert costs.run_seconds(2, 0, 32, 10) == pytest.approx({"eager": 1.28, "graphs": 1.384, "compiled": 12.352})


def test_compiling_never_beats_reading_the_weights(round_constants, monkeypatch):
    monkeypatch.setattr(costs, "COMPILED_LAYER_STEP_SAVING", 1.0)
    assert costs.step_seconds(100, 1e9)["compiled"] == pytest.approx(1e-3)


@pytest.mark.parametrize(
    "layers,weight_bytes,steps,calls,path",
    [
        # 2 layers, 32 steps: a capture (1 s) pays once the calls save it at 2.8 ms a step: 1 / 0.0896 = 11.2 calls
        (2, 0, 32, 1, "eager"),
        (2, 0, 32, 11, "eager"),
        (2, 0, 32, 12, "graphs"),
        # compiling (11 s more than a capture) pays at 0.1 ms saved a step: 110,000 steps = 3,437.5 calls of 32
        (2, 0, 32, 3000, "graphs"),
        (2, 0, 32, 4000, "compiled"),
        # 32 layers, 12 GB, 128 steps: graphs from the first call (17.8 ms saved a step); compiling (41 s more)
        # pays at 1.6 ms saved a step: 25,625 steps = 200.2 calls
        (32, 12e9, 128, 1, "graphs"),
        (32, 12e9, 128, 200, "graphs"),
        (32, 12e9, 128, 201, "compiled"),
        # the weights' read dominates every loop alike: nothing repays a capture
        (1, 1e12, 128, 1000, "eager"),
    ],
)
def test_cheapest_path_by_hand(round_constants, layers, weight_bytes, steps, calls, path):
    assert costs.cheapest_path(layers, weight_bytes, steps, calls) == path


def test_ties_go_to_the_simpler_loop():
    assert costs.cheapest({"eager": 1.0, "graphs": 1.0, "compiled": 1.0}) == "eager"
    assert costs.cheapest({"eager": 2.0, "graphs": 1.0, "compiled": 1.0}) == "graphs"


#: bf16 weight bytes of the benchmark's Llama shapes (7B: 6.74e9 parameters; TinyLlama-1.1B's shape: 1.1e9), and of
#: the quickstart's GPT-2 (2 layers, hidden 128: 0.43e6 parameters in float32)
SEVEN_B, ONE_B, QUICKSTART = 13.5e9, 2.2e9, 1.7e6


def test_the_constants_reproduce_the_h200_measurements_they_come_from():
    """benchmarks/results/decoding_gpu.md (runs 1 and 2 of 2026-12-04 on an H200)."""
    top_k = costs.step_seconds(32, SEVEN_B)
    assert top_k["graphs"] == pytest.approx(1.018 / 128, rel=0.1)  # 1,006 tok/s at batch 8
    assert top_k["compiled"] == pytest.approx(0.705 / 128, rel=0.1)  # 1,453 tok/s
    assert top_k["eager"] == pytest.approx(0.031, rel=0.1)  # 29 (HF) to 33 ms (pargs) a step
    assert costs.step_seconds(54, SEVEN_B + ONE_B)["graphs"] == pytest.approx(1.579 / 128, rel=0.1)  # PARGS 7B+1B
    assert costs.step_seconds(64, 2 * SEVEN_B)["graphs"] == pytest.approx(2.139 / 128, rel=0.1)  # PARGS 7B+7B
    assert costs.step_seconds(2, QUICKSTART)["eager"] == pytest.approx(2.79e-3, rel=0.1)  # quickstart top-k [2]
    assert costs.step_seconds(4, 2 * QUICKSTART)["eager"] == pytest.approx(4.77e-3, rel=0.1)  # quickstart PARGS [2]
    assert costs.step_seconds(2, QUICKSTART)["graphs"] == pytest.approx(0.388e-3, rel=0.1)  # [2]
    assert costs.step_seconds(4, 2 * QUICKSTART)["graphs"] == pytest.approx(0.602e-3, rel=0.15)  # [2]
    assert costs.first_call_seconds(32)["compiled"] == pytest.approx(33.0, rel=0.1)


@pytest.mark.parametrize(
    "layers,weight_bytes,steps,calls,path",
    [
        (2, QUICKSTART, 32, 70, "graphs"),  # the quickstart's top-k: 7 batches x 10 calls of 16 rows
        (4, QUICKSTART * 2, 32, 70, "graphs"),  # its PARGS (policy and RM, 2 layers each)
        (2, QUICKSTART, 32, 1, "eager"),  # one call of it, alone
        (32, SEVEN_B, 128, 1, "graphs"),  # one 7B call of 128 tokens
        (32, SEVEN_B, 128, 50, "graphs"),  # 400 prompts at batch 8
        (32, SEVEN_B, 128, 500, "compiled"),  # 4,000 prompts at batch 8
        (54, SEVEN_B + ONE_B, 128, 1, "graphs"),  # PARGS 7B + 1B RM, one call
    ],
)
def test_what_auto_picks_in_the_regimes_measured(layers, weight_bytes, steps, calls, path):
    assert costs.cheapest_path(layers, weight_bytes, steps, calls) == path
