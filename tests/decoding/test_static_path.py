"""The static decoding path (fixed-shape step over preallocated caches) gives the eager loop's tokens.

The eager loop (pargs/decoding/engine.py, decode_tokens) is the reference: rows leave its batch as they
finish, its caches grow, and the host checks stopping after every step. The static path keeps every
row to the end in buffers of a bucketed length. Here both decode the same batches (prompts of
different lengths, rows ending at different steps, min_new_tokens) on tiny GPT-2 and Llama models,
in float32 on CPU; the step runs as it is (``static``) across the matrix, and through
``torch.compile`` with a cheap backend (full graph: no graph break inside the step) on two cases.
"""

import copy
import logging

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

import pargs.decoding.static_loop as static_loop
from pargs.decoding.cached_scorer import CachedCausalScorer
from pargs.decoding.engine import Stopping, choose_path, encode_prompts, generate
from pargs.decoding.methods import DecodeMethod, preset
from pargs.decoding.noise import stable_seed
from pargs.decoding.text_reward import ModelReward
from pargs.decoding.text_scorer import TextScorer
from pargs.errors import ConfigError
from tests.conftest import make_lm, make_rm

PROMPTS = [
    "write a review of the hotel about the staff :",
    "write a short review of the phone :",
    "the plot",
    "write a detailed review of the movie about the plot and the actors :",
    "write a review of the gym :",
]
#: besides the tokenizer's EOS, these ids end a response too, so sampled rows end at different steps
EXTRA_EOS = list(range(3, 40, 3))
METHODS = {
    "top-k": preset("top-k"),
    "greedy": preset("greedy"),
    "pargs": preset("pargs", scorer="rm", k=5, beta=2.0),
    "pargs-g": preset("pargs-g", scorer="rm", k=5, beta=2.0),
    "args": preset("args", scorer="rm", k=4),
}


def _seeds(n, salt="static"):
    return torch.tensor([stable_seed(salt, i) for i in range(n)])


def _with_extra_eos(model):
    model = copy.deepcopy(model)
    model.generation_config.eos_token_id = [model.config.eos_token_id, *EXTRA_EOS]
    return model


def _llama_config(tokenizer, **kw):
    kw.setdefault("max_position_embeddings", 128)
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        **kw,
    )


@pytest.fixture(scope="module")
def models(tokenizer):
    """name -> (policy with extra EOS ids, causal RM of the same family)."""
    torch.manual_seed(11)
    llama = LlamaForCausalLM(_llama_config(tokenizer)).eval()
    torch.manual_seed(12)
    llama_rm = LlamaForSequenceClassification(_llama_config(tokenizer, num_labels=1)).eval()
    with torch.no_grad():
        llama_rm.score.weight.normal_(0, 1.0)  # rewards that differ visibly between candidates
    return {
        "gpt2": (_with_extra_eos(make_lm(tokenizer)), make_rm(tokenizer)),
        "llama": (_with_extra_eos(llama), llama_rm),
    }


def _both(policy, rm, tokenizer, method, prompts, seeds, path="static", **kw):
    kw.setdefault("max_new_tokens", 14)

    def scorer():
        return None if rm is None else CachedCausalScorer(rm)

    eager = generate(policy, tokenizer, prompts, method, seeds, scorer=scorer(), path="eager", **kw)
    other = generate(policy, tokenizer, prompts, method, seeds, scorer=scorer(), path=path, **kw)
    assert other.path == path
    return eager, other


@pytest.mark.parametrize("method", METHODS, ids=str)
@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_static_path_gives_the_eager_tokens(models, tokenizer, family, method):
    policy, rm = models[family]
    eager, static = _both(policy, rm, tokenizer, METHODS[method], PROMPTS, _seeds(len(PROMPTS)))
    assert static.token_ids == eager.token_ids
    assert static.stop_reasons == eager.stop_reasons
    assert static.texts == eager.texts


def test_rows_end_at_different_steps(models, tokenizer):
    """The matrix above is not degenerate: rows stop by EOS at different steps, others run to the limit."""
    lengths, reasons = set(), set()
    for family in models:
        for method in ("top-k", "pargs"):
            policy, rm = models[family]
            gen = generate(
                policy,
                tokenizer,
                PROMPTS,
                METHODS[method],
                _seeds(len(PROMPTS)),
                scorer=CachedCausalScorer(rm),
                max_new_tokens=14,
                path="static",
            )
            lengths.update(gen.num_tokens)
            reasons.update(gen.stop_reasons)
    assert len(lengths) >= 4 and reasons == {"eos", "length"}


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_the_static_scorer_gives_the_rewards_of_scoring_from_scratch(models, tokenizer, family):
    """The RM's candidate chunk in the static buffers (candidates at the columns after the prefix, the chosen
    one moved into place) against each candidate sequence scored on its own, over a walk of 6 steps."""
    from tests.decoding.test_scorers import _from_scratch

    rm = models[family][1]
    scorer = CachedCausalScorer(rm).static_twin(64)
    prompts = PROMPTS[:3]
    ids, mask = encode_prompts(tokenizer, prompts)
    scorer.begin(prompts, ids, mask)
    g = torch.Generator().manual_seed(0)
    prefixes = [[] for _ in prompts]
    for _ in range(6):
        cand = torch.randint(3, len(tokenizer), (len(prompts), 5), generator=g)
        got = scorer.score_candidates(cand)
        for i, p in enumerate(prompts):
            torch.testing.assert_close(
                got[i], _from_scratch(rm, tokenizer, p, prefixes[i], cand[i].tolist()), atol=1e-5, rtol=1e-5
            )
        chosen = torch.randint(5, (len(prompts),), generator=g)
        scorer.advance(chosen, cand.gather(1, chosen.unsqueeze(1)).squeeze(1))
        for i in range(len(prompts)):
            prefixes[i].append(int(cand[i, chosen[i]]))


@pytest.mark.parametrize("method", ["top-k", "pargs"])
def test_min_new_tokens(models, tokenizer, method):
    policy, rm = models["gpt2"]
    eager, static = _both(policy, rm, tokenizer, METHODS[method], PROMPTS, _seeds(len(PROMPTS)), min_new_tokens=6)
    assert static.token_ids == eager.token_ids
    assert min(static.num_tokens) >= 6 and "eos" in static.stop_reasons


@pytest.mark.parametrize("method", ["top-k", "pargs-g"])
def test_static_results_do_not_depend_on_batch_size(models, tokenizer, method):
    policy, rm = models["llama"]
    seeds = _seeds(len(PROMPTS))

    def run(prompts, s):
        scorer = CachedCausalScorer(rm)
        return generate(policy, tokenizer, prompts, METHODS[method], s, scorer=scorer, max_new_tokens=14, path="static")

    whole = run(PROMPTS, seeds).token_ids
    assert whole == [run([p], seeds[i : i + 1]).token_ids[0] for i, p in enumerate(PROMPTS)]


def test_a_kept_session_decodes_a_new_batch_like_a_fresh_one(models, tokenizer):
    """The second call of a shape reuses the buffers and state tensors of the first; nothing of it leaks."""
    policy, rm = models["gpt2"]
    static_loop.release_sessions()
    method = METHODS["pargs"]
    first = generate(
        policy,
        tokenizer,
        PROMPTS,
        method,
        _seeds(5, "a"),
        scorer=CachedCausalScorer(rm),
        max_new_tokens=14,
        min_new_tokens=3,
        path="static",
    )
    assert len(static_loop._SESSIONS) == 1
    other = [p + " the staff" for p in PROMPTS[::-1]]  # the same padded length bucket, other tokens
    eager, static = _both(policy, rm, tokenizer, method, other, _seeds(5, "b"))
    assert len(static_loop._SESSIONS) == 1 and first.token_ids != static.token_ids
    assert static.token_ids == eager.token_ids


def test_batches_of_five_and_seven_rows_share_one_session(models, tokenizer):
    """Both are padded to 8 rows (copies of the last row, decoded and dropped)."""
    policy, rm = models["llama"]
    static_loop.release_sessions()
    seven = PROMPTS + PROMPTS[:2]
    _both(policy, rm, tokenizer, METHODS["pargs-g"], PROMPTS, _seeds(5))
    eager, static = _both(policy, rm, tokenizer, METHODS["pargs-g"], seven, _seeds(7))
    assert len(static_loop._SESSIONS) == 1 and static.token_ids == eager.token_ids and len(static.token_ids) == 7


def test_five_methods_decoded_in_turn_keep_their_sessions(models, tokenizer):
    """A predict run decodes every method on every batch; with fewer kept sessions than methods, each batch would
    make (capture, on CUDA) every method's step again."""
    policy, rm = models["gpt2"]
    static_loop.release_sessions()
    kept = []
    for _ in range(2):
        for method in METHODS.values():
            generate(
                policy,
                tokenizer,
                PROMPTS,
                method,
                _seeds(5),
                scorer=CachedCausalScorer(rm),
                max_new_tokens=4,
                path="static",
            )
        kept.append({key: id(session) for key, session in static_loop._SESSIONS.items()})
    assert len(kept[0]) == len(METHODS) and kept[1] == kept[0]
    static_loop.release_sessions()


def test_sessions_past_the_byte_limit_are_forgotten_least_recent_first(models, tokenizer, monkeypatch):
    policy = models["gpt2"][0]
    static_loop.release_sessions()

    def run(rows):
        generate(policy, tokenizer, PROMPTS[:rows], METHODS["top-k"], _seeds(rows), max_new_tokens=4, path="static")

    run(1)
    one_row = next(iter(static_loop._SESSIONS.values())).buffer_bytes()
    assert one_row > 0
    monkeypatch.setattr(static_loop, "MAX_SESSION_BYTES", 5 * one_row)  # buffers of 1 + 2 rows fit, 1 + 2 + 4 do not
    run(2)
    assert [key[2][2] for key in static_loop._SESSIONS] == [1, 2]
    run(4)  # the 1-row session goes first, then the 2-row one (2 + 4 rows is still too much)
    assert [key[2][2] for key in static_loop._SESSIONS] == [4]
    run(1)
    assert [key[2][2] for key in static_loop._SESSIONS] == [4, 1]
    static_loop.release_sessions()


def test_a_model_whose_weights_moved_gets_a_new_session(models, tokenizer):
    """A captured CUDA graph reads the weights where they were; new weight tensors need a new capture."""
    policy = copy.deepcopy(models["gpt2"][0])
    static_loop.release_sessions()

    def run():
        return generate(policy, tokenizer, PROMPTS, METHODS["top-k"], _seeds(5), max_new_tokens=6, path="static")

    before = run()
    run()
    assert len(static_loop._SESSIONS) == 1
    with torch.no_grad():
        policy.transformer.wte.weight = torch.nn.Parameter(policy.transformer.wte.weight * 3.0)  # a new tensor
    after = run()
    assert len(static_loop._SESSIONS) == 2 and after.token_ids != before.token_ids


def test_best_of_n_on_the_static_path(models, tokenizer):
    policy, rm = models["gpt2"]
    method = DecodeMethod("bon", kind="best_of_n", n=3, top_k=10, scorer="rm")
    eager, static = _both(policy, rm, tokenizer, method, PROMPTS[:3], _seeds(3))
    assert static.token_ids == eager.token_ids
    torch.testing.assert_close(static.scores, eager.scores)


@pytest.mark.parametrize("family,method", [("gpt2", "pargs"), ("llama", "top-k")])
def test_the_compiled_step_is_one_graph_and_gives_the_eager_tokens(models, tokenizer, monkeypatch, family, method):
    """torch.compile with fullgraph=True fails on any graph break inside the step; the cheap aot_eager
    backend traces what Inductor would compile. A second call of the shape compiles nothing new."""
    from torch._dynamo.utils import counters

    monkeypatch.setattr(static_loop, "COMPILE_BACKEND", "aot_eager")
    static_loop.release_sessions()
    policy, rm = models[family]
    seeds = _seeds(len(PROMPTS))
    eager, compiled = _both(policy, rm, tokenizer, METHODS[method], PROMPTS, seeds, path="compiled")
    assert compiled.token_ids == eager.token_ids and compiled.compile_seconds > 0
    graphs = counters["stats"]["unique_graphs"]
    again = generate(
        policy,
        tokenizer,
        PROMPTS[::-1],
        METHODS[method],
        seeds.flip(0),
        scorer=CachedCausalScorer(rm),
        max_new_tokens=14,
        path="compiled",
    )
    assert again.token_ids == eager.token_ids[::-1] and again.compile_seconds == 0.0
    assert counters["stats"]["unique_graphs"] == graphs


def _stop(policy, tokenizer, **kw):
    return Stopping.for_models(policy, tokenizer, "cpu", max_new_tokens=4, **kw)


def test_path_choice(lm, rm, tokenizer, caplog):
    text = TextScorer(ModelReward(rm, tokenizer), tokenizer)
    cached = CachedCausalScorer(rm)
    pargs, stop = METHODS["pargs"], _stop(lm, tokenizer)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert choose_path("auto", pargs, lm, cached, stop, cpu) == "eager"
    with caplog.at_level(logging.WARNING, logger="pargs.decoding.engine"):
        assert choose_path("auto", pargs, lm, text, stop, cuda) == "eager"
    assert "TextScorer scores on the host" in caplog.text
    with pytest.raises(ConfigError, match="path 'compiled' cannot run method 'pargs': TextScorer scores on the host"):
        choose_path("compiled", pargs, lm, text, stop, cpu)
    with pytest.raises(ConfigError, match="stop strings"):
        choose_path("static", METHODS["top-k"], lm, None, _stop(lm, tokenizer, stop_strings=["x"]), cpu)
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        choose_path("graphs", METHODS["top-k"], lm, None, stop, cpu)
    with pytest.raises(ConfigError, match="must be one of"):
        choose_path("fast", METHODS["top-k"], lm, None, stop, cpu)
    flash = copy.deepcopy(lm)
    flash.config._attn_implementation = "flash_attention_2"
    with pytest.raises(ConfigError, match="the policy cannot use static caches: its attention implementation"):
        choose_path("compiled", METHODS["top-k"], flash, None, stop, cpu)
    assert (
        choose_path("compiled", DecodeMethod("bon", kind="best_of_n", n=2, scorer="rm"), lm, text, stop, cpu)
        == "compiled"
    )  # Best-of-N samples, then scores on the host


def test_auto_on_cuda_weighs_the_calls_of_a_shape(lm, rm, tokenizer, monkeypatch, caplog):
    """auto on CUDA takes the loop of the fewest estimated seconds for ``calls`` calls (pargs/decoding/path_costs.py),
    counting the layers a step runs: the policy's 2, plus the RM's 2 for PARGS, which scores every step (not for
    Best-of-N, which scores whole responses). With an eager step of 1 ms per layer, a free captured step and a
    capture of 0.1 s, graphs pays once calls x steps x layers passes 100 (a tie stays eager); with compiling 1 s and
    saving 0.1 of a 0.2 ms graphs layer-step, compiled pays past calls x steps x layers = 9,000."""
    import pargs.decoding.path_costs as costs

    for name, value in {
        "EAGER_STEP_SECONDS": 0.0,
        "EAGER_LAYER_STEP_SECONDS": 1e-3,
        "WEIGHT_BYTES_PER_SECOND": 1e30,
        "GRAPHS_STEP_SECONDS": 0.0,
        "GRAPHS_LAYER_STEP_SECONDS": 0.0,
        "COMPILED_LAYER_STEP_SAVING": 0.0,
        "CAPTURE_SECONDS": 0.1,
        "COMPILE_SECONDS": 1e9,
    }.items():
        monkeypatch.setattr(costs, name, value)
    cuda, cached = torch.device("cuda"), CachedCausalScorer(rm)

    def auto(method, steps, calls=1):
        stop = Stopping.for_models(lm, tokenizer, "cpu", max_new_tokens=steps)
        scorer = None if method == "top-k" else cached
        method = DecodeMethod("bon", kind="best_of_n", n=2, scorer="rm") if method == "bon" else METHODS[method]
        return choose_path("auto", method, lm, scorer, stop, cuda, calls)

    assert [auto("pargs", 25), auto("pargs", 26), auto("pargs", 500)] == ["eager", "graphs", "graphs"]
    assert [auto("top-k", 50), auto("top-k", 51)] == ["eager", "graphs"]
    assert [auto("bon", 50), auto("bon", 51)] == ["eager", "graphs"]
    assert [auto("pargs", 5, calls=5), auto("pargs", 5, calls=6)] == ["eager", "graphs"]
    assert [auto("top-k", 10, calls=5), auto("top-k", 10, calls=6)] == ["eager", "graphs"]
    assert choose_path("auto", METHODS["top-k"], lm, None, _stop(lm, tokenizer), torch.device("cpu"), 10**9) == "eager"

    monkeypatch.setattr(costs, "GRAPHS_LAYER_STEP_SECONDS", 2e-4)
    monkeypatch.setattr(costs, "COMPILED_LAYER_STEP_SAVING", 1e-4)
    monkeypatch.setattr(costs, "COMPILE_SECONDS", 1.0)
    monkeypatch.setattr(costs, "COMPILE_LAYER_SECONDS", 0.0)
    with caplog.at_level(logging.INFO, logger="pargs.decoding.engine"):
        assert [auto("top-k", 10, calls=449), auto("top-k", 10, calls=451)] == ["graphs", "compiled"]
        assert [auto("pargs", 10, calls=224), auto("pargs", 10, calls=226)] == ["graphs", "compiled"]
    told = "decoding method 'top-k', 451 call(s) of 10 steps, 2 layers: eager ~9.0 s, graphs ~1.9 s, compiled ~1.9 s"
    assert f"{told}; path compiled" in caplog.text


def _bench_llama(tokenizer, seed, **kw):
    """A tiny Llama with room for the GPU benchmark's 64-token prompts and 128 new tokens."""
    torch.manual_seed(seed)
    cls = LlamaForSequenceClassification if kw.get("num_labels") else LlamaForCausalLM
    return cls(_llama_config(tokenizer, max_position_embeddings=256, **kw)).eval()


@pytest.mark.parametrize("method", ["top-k", "pargs"])
def test_later_calls_of_a_captured_shape_replay_only(tokenizer, monkeypatch, method):
    """The call sequence that failed on the H200 ("a later call compiled again"): the GPU benchmark's shape (8
    rows, 64-token prompts, exactly 128 new tokens, k = 10) decoded once, then twice more, on the compiled
    path as CUDA runs it: warm-up steps, a capture, replays. A stand-in for the capture (CPU has no graphs)
    records the step and replays it. Only the first call compiles and captures; the later ones replay only,
    compile nothing and report no compile time; every call gives the eager tokens (float32)."""
    from torch._dynamo.utils import counters

    captures = []

    def stand_in(run, warmup):
        for _ in range(warmup):
            run()
        captures.append(run)
        return run

    monkeypatch.setattr(static_loop, "COMPILE_BACKEND", "eager")  # dynamo's graph and guards, run as they are
    monkeypatch.setattr(static_loop, "CAPTURED_ON", ("cuda", "cpu"))
    monkeypatch.setattr(static_loop, "capture_graph", stand_in)
    static_loop.release_sessions()
    policy, rm = _bench_llama(tokenizer, 11), _bench_llama(tokenizer, 12, num_labels=1)
    words = tokenizer.convert_ids_to_tokens(list(range(3, len(tokenizer))))
    g = torch.Generator().manual_seed(0)
    prompts = [" ".join(words[int(i)] for i in torch.randint(len(words), (64,), generator=g)) for _ in range(8)]
    m = preset("top-k", top_k=10) if method == "top-k" else preset("pargs", k=10, scorer="rm")
    kw = dict(max_new_tokens=128, min_new_tokens=128)
    eager, first = _both(policy, rm, tokenizer, m, prompts, _seeds(8), path="compiled", **kw)
    assert first.token_ids == eager.token_ids and first.compile_seconds > 0 and len(captures) == 1
    graphs = counters["stats"]["unique_graphs"]
    for _ in range(2):
        again = generate(policy, tokenizer, prompts, m, _seeds(8), scorer=CachedCausalScorer(rm), path="compiled", **kw)
        assert again.token_ids == eager.token_ids and again.compile_seconds == 0.0
    assert len(captures) == 1 and counters["stats"]["unique_graphs"] == graphs
    static_loop.release_sessions()


def test_a_process_compiles_more_shapes_than_dynamos_recompile_limit(models, tokenizer, monkeypatch):
    """torch._dynamo counts recompilations per code object, and with fullgraph=True the shape after its limit
    (8 by default; 2 here) fails hard: each session key gets its own copy of the step's code."""
    import torch._dynamo

    monkeypatch.setattr(static_loop, "COMPILE_BACKEND", "eager")
    static_loop.release_sessions()
    policy = models["llama"][0]
    # the config's own patch: monkeypatch's undo leaves torch 2.11's dynamo config without the entry, and a later
    # compile in the process fails with "recompile_limit does not exist"
    with torch._dynamo.config.patch(recompile_limit=2):
        for rows in (1, 2, 4):  # three shapes: one over the limit
            eager, compiled = _both(policy, None, tokenizer, METHODS["top-k"], PROMPTS[:rows], _seeds(rows), "compiled")
            assert compiled.token_ids == eager.token_ids
    assert torch._dynamo.config.recompile_limit == 8
    static_loop.release_sessions()


def test_a_rule_without_a_static_step_is_refused(lm, tokenizer):
    import tests.decoding.runner_up_rule  # noqa: F401  (registers kind runner_up)

    method = DecodeMethod("runner-up", kind="runner_up")
    with pytest.raises(ConfigError, match="rule 'runner_up' does not set static_step = True"):
        generate(lm, tokenizer, PROMPTS[:1], method, _seeds(1), max_new_tokens=2, path="static")


def _agreement(eager, other):
    same = sum(a == b for x, y in zip(eager.token_ids, other.token_ids) for a, b in zip(x, y))
    return f"{same} of {sum(eager.num_tokens)} tokens as eager"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_cuda_graphs_give_the_eager_tokens(models, tokenizer):
    """float32 on the GPU: a captured step replayed gives the eager loop's tokens, on the first call of a shape
    (warm-up steps, capture, replays) and on a later one (replays only). bfloat16: the agreement is printed."""
    static_loop.release_sessions()
    for family, (policy, rm) in models.items():
        policy, rm = copy.deepcopy(policy).cuda(), copy.deepcopy(rm).cuda()
        for name in ("top-k", "pargs"):
            eager, captured = _both(policy, rm, tokenizer, METHODS[name], PROMPTS, _seeds(len(PROMPTS)), path="graphs")
            assert captured.token_ids == eager.token_ids, (family, name)
            again = generate(
                policy,
                tokenizer,
                PROMPTS[::-1],
                METHODS[name],
                _seeds(len(PROMPTS)).flip(0),
                scorer=CachedCausalScorer(rm),
                max_new_tokens=14,
                path="graphs",
            )
            assert again.token_ids == eager.token_ids[::-1] and again.compile_seconds == 0.0
        policy, rm = policy.to(torch.bfloat16), rm.to(torch.bfloat16)
        eager, captured = _both(policy, rm, tokenizer, METHODS["pargs"], PROMPTS, _seeds(len(PROMPTS)), path="graphs")
        print(f"{family} graphs bfloat16 pargs: {_agreement(eager, captured)}")
    static_loop.release_sessions()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="the compiled path is captured on CUDA only")
def test_compiled_step_on_cuda_gives_the_eager_tokens(models, tokenizer):
    """Inductor's step inside a CUDA graph, Llama policy and RM in float32: one compile, then later calls that
    only replay (tests/decoding/test_path_agreement.py checks the bfloat16 agreement)."""
    static_loop.release_sessions()
    policy, rm = (copy.deepcopy(m).cuda() for m in models["llama"])
    eager, compiled = _both(policy, rm, tokenizer, METHODS["pargs"], PROMPTS, _seeds(len(PROMPTS)), path="compiled")
    print(f"llama compiled float32: compiling and capturing took {compiled.compile_seconds:.1f} s")
    assert compiled.token_ids == eager.token_ids and compiled.compile_seconds > 0
    for _ in range(2):  # later calls of the shape replay only (issue 24: "a later call compiled again")
        again = generate(
            policy,
            tokenizer,
            PROMPTS,
            METHODS["pargs"],
            _seeds(len(PROMPTS)),
            scorer=CachedCausalScorer(rm),
            max_new_tokens=14,
            path="compiled",
        )
        assert again.token_ids == eager.token_ids and again.compile_seconds == 0.0
    static_loop.release_sessions()
