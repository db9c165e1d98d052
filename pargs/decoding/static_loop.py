"""The static decoding path: the token loop as one fixed-shape step, run eagerly, compiled or captured.

The eager loop (:func:`pargs.decoding.engine.decode_tokens`) drops finished rows, grows its caches and
asks the host after every step whether to stop. On a GPU that makes decoding launch-bound: a small
step costs its kernel launches and a host round trip, whatever the batch. Here one step is

    mask the logits (suppressed ids; EOS before ``min_new_tokens``) -> log-softmax -> the rule's step
    (for guided rules: the reward model's candidate chunk and the move of the chosen candidate)
    -> record the token -> one policy forward -> the next logits,

over caches allocated once (:class:`~pargs.decoding.static_stream.StaticStream`) with room for
prompt + ``max_new_tokens`` (+ the k candidates of the reward model), rounded up to a multiple of
:data:`BUCKET` columns so that one captured step serves every length in its bucket; batches are
padded to 1, 2, 4, 8 rows or a multiple of 8 (:func:`bucketed_rows`) for the same reason. Every input is a
device tensor updated in place (step counter, write column, positions, visibility, per-row seeds);
finished rows keep decoding unread and a device-side ``done`` flag is read by the host only every
``sync_every`` steps. So the step can be

- ``static``: run as it is (the reference for the two below; what the tests compare with the eager loop),
- ``graphs``: captured once as a CUDA graph and replayed (CUDA only; capture costs about one step),
- ``compiled``: compiled with ``torch.compile`` (Inductor fuses the small operations), and on CUDA
  captured as a CUDA graph as well; compiling takes seconds to minutes once per shape.

A captured step (and its buffers) is kept in a small cache of sessions keyed by everything it bakes
in: the models and where their weights live, the method's fields, the rows, the buffer lengths and
the stop ids. A later call of the same shape only prefills and replays. :func:`release_sessions`
frees them.

Tokens equal the eager loop's up to floating-point rounding: attention runs over the whole buffer with
the unwritten columns masked, which can change the last bits of a sum (tested on CPU in float32).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import astuple
from functools import partial
from types import FunctionType

import torch
from torch import Tensor
from transformers import PreTrainedModel

from pargs.decoding.engine import Prompts, Stopping, lm_forward
from pargs.decoding.finite import WatchedScorer, raise_if_not_finite
from pargs.decoding.methods import DecodeMethod
from pargs.decoding.scorer import Scorer
from pargs.decoding.static_stream import StaticStream

log = logging.getLogger(__name__)

#: buffer lengths are rounded up to a multiple of this many columns (one captured step per bucket)
BUCKET = 64
#: the most sessions (captured steps and their buffers) kept, and the most bytes their key/value buffers may hold
#: together; past either the least recently used go first. A ``pargs predict`` run cycles through one session per
#: method and bucket of rows with every batch (the quickstart: 5 methods), so fewer sessions than that would
#: capture every method again for every batch. 16 GiB: 20 sessions of a 7B policy at 8 rows and 192 columns
#: (0.8 GB each), 5 at 32 rows.
MAX_SESSIONS = 16
MAX_SESSION_BYTES = 16 * 2**30
#: the torch.compile backend of the compiled path (tests use a cheaper one)
COMPILE_BACKEND = "inductor"
#: steps run before a CUDA graph is captured (they compile the step, warm up cuBLAS; they are real steps)
WARMUP_STEPS = 2
#: the most compiled steps kept (:func:`compiled_step`); the least recently used goes first
MAX_COMPILED = 32
#: device types whose graphs and compiled paths capture the step as a graph (tests add ``cpu`` with a stand-in
#: :func:`capture_graph`)
CAPTURED_ON = ("cuda",)


def bucketed(length: int) -> int:
    """``length`` rounded up to a multiple of :data:`BUCKET`."""
    return -(-length // BUCKET) * BUCKET


def bucketed_rows(rows: int) -> int:
    """The batch a step is captured for: 1, 2, 4 or 8 rows, then multiples of 8 (a last, smaller batch of a
    run reuses a captured step or adds one of a few more shapes; the extra rows decode a copy, unread)."""
    return 1 << (rows - 1).bit_length() if rows <= 8 else -(-rows // 8) * 8


def _padded(batch: Prompts, rows: int) -> Prompts:
    """``batch`` with copies of its last row appended up to ``rows`` rows."""
    take = torch.cat([torch.arange(len(batch.texts)), torch.full((rows - len(batch.texts),), len(batch.texts) - 1)])
    take = take.to(batch.ids.device)
    return Prompts(
        [batch.texts[int(i)] for i in take.tolist()], batch.ids[take], batch.mask[take], batch.seeds[take], batch.path
    )


class Session:
    """The buffers, state tensors and captured step of one shape; reused by later calls of that shape."""

    def __init__(
        self,
        rule,
        method: DecodeMethod,
        policy: PreTrainedModel,
        scorer: Scorer | None,
        stop: Stopping,
        rows: int,
        prompt: int,
        path: str,
        compiled: Callable[[Session], None] | None = None,
    ) -> None:
        device = stop.eos_ids.device
        self.rule, self.method, self.path = rule, method, path
        self.slots = bucketed(prompt + stop.max_new_tokens)
        self.policy = StaticStream(lm_forward(policy), policy.config, policy.dtype, self.slots)
        # the candidate chunk of the last step reaches k - 1 columns past the last token
        # the twin flags rows that see a non-finite reward, read once after the loop (pargs/decoding/finite.py)
        twin = scorer.static_twin(bucketed(prompt + stop.max_new_tokens + method.k - 1)) if scorer else None
        self.scorer = WatchedScorer(twin, fixed_rows=True) if twin is not None else None
        self._twin_stream = getattr(twin, "stream", None)  # its key/value buffers, counted by buffer_bytes
        self.eos_ids, self.suppress_ids = stop.eos_ids.clone(), stop.suppress_ids.clone()
        self.step_no = torch.zeros((), dtype=torch.long, device=device)  # the step being decoded
        self.min_new = torch.zeros((), dtype=torch.long, device=device)
        self.seeds = torch.zeros(rows, dtype=torch.long, device=device)
        self.tokens = torch.zeros(rows, self.slots, dtype=torch.long, device=device)  # [rows, step] the picks
        self.done = torch.zeros(rows, dtype=torch.bool, device=device)  # the row has produced an EOS
        self.logits: Tensor | None = None  # [rows, vocab] the policy's logits for the next step
        self.run = self.step if compiled is None else partial(compiled, self)
        self.captured = path != "static" and device.type in CAPTURED_ON  # run as a captured CUDA graph
        self.replay: Callable[[], None] | None = None  # one step, once the first call has prepared it
        self.capture_seconds = 0.0  # of the last decode: warm-up steps + compiling + capturing

    def buffer_bytes(self) -> int:
        """Bytes held by the policy's key/value buffers and the scorer's (allocated by the first :meth:`start`)."""
        twin = self._twin_stream.allocated_bytes() if isinstance(self._twin_stream, StaticStream) else 0
        return self.policy.allocated_bytes() + twin

    def start(self, batch: Prompts, stop: Stopping) -> None:
        """Prefill the policy (and the scorer) with a batch and reset the state tensors in place."""
        logits = self.policy.prefill(batch.ids, batch.mask)[:, -1]
        if self.logits is None:
            self.logits = torch.empty_like(logits)
        self.logits.copy_(logits)
        if self.scorer is not None:
            self.scorer.begin(batch.texts, batch.ids, batch.mask)
        self.seeds.copy_(batch.seeds)
        self.step_no.zero_()
        self.min_new.fill_(stop.min_new_tokens)
        self.done.zero_()

    def step(self) -> None:
        """One decoding step on the device: pick every row's token, record it, run the policy on it."""
        logits = self.logits.float()  # the eager loop's Stopping.mask_logits, with the step as a tensor
        if self.suppress_ids.numel():
            logits = logits.index_fill(1, self.suppress_ids, float("-inf"))
        early = self.step_no < self.min_new
        eos = logits.index_select(1, self.eos_ids)
        logits = logits.index_copy(1, self.eos_ids, torch.where(early, float("-inf"), eos))
        logp = torch.log_softmax(logits, dim=-1)
        tokens = self.rule.step(self.method, logp, self.seeds, self.step_no, self.scorer)
        self.tokens.index_copy_(1, self.step_no.view(1), tokens.unsqueeze(1))
        self.done.logical_or_((tokens.unsqueeze(1) == self.eos_ids).any(1))  # isin may sort; this never syncs
        self.logits.copy_(self.policy.append(tokens))
        self.step_no.add_(1)

    def decode(self, steps: int, sync_every: int) -> int:
        """Run up to ``steps`` steps, stopping early (checked every ``sync_every`` steps) once every row has
        produced an EOS; returns the steps run. The session's first call prepares the step (see :meth:`_prepare`);
        every later call only replays it, so it compiles and captures nothing."""
        taken, self.capture_seconds = 0, 0.0
        if self.replay is None and steps:
            start = time.perf_counter()
            taken = self._prepare(steps)
            if self.path != "static":
                self.capture_seconds = time.perf_counter() - start
        while taken < steps:
            if taken % sync_every == 0 and bool(self.done.all()):
                break
            (self.replay or self.run)()
            taken += 1
        return taken

    def _prepare(self, steps: int) -> int:
        """Make ``replay``; returns the (real) steps that took. Captured paths: :data:`WARMUP_STEPS` steps (they
        compile the step and warm cuBLAS up), then the capture (a decode too short for both captures nothing:
        its steps run as they are, and the next call tries again). Compiled on CPU: one step, which compiles."""
        if self.captured:
            if steps <= WARMUP_STEPS:
                return 0
            self.replay = capture_graph(self.run, WARMUP_STEPS)
            return WARMUP_STEPS
        taken = 0
        if self.path == "compiled":
            self.run()
            taken = 1
        self.replay = self.run
        return taken


def capture_graph(run: Callable[[], None], warmup: int) -> Callable[[], None]:
    """Run ``warmup`` calls of ``run`` on a side stream, capture one more as a CUDA graph; returns its replay.

    The captured call is recorded, not executed: the state tensors advance only when the graph is replayed.
    """
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup):
            run()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=side):  # the stream the warm-up ran on
        run()
    torch.cuda.synchronize()
    return graph.replay


def compiled_step(key: tuple) -> Callable[[Session], None]:
    """``Session.step`` compiled by ``torch.compile``, one compiled function per session key (less the models'
    weight addresses), kept for later sessions of that key.

    Each gets its own copy of the step's code object: ``torch._dynamo`` keeps its compiled graphs and counts
    recompilations per code object, and with ``fullgraph=True`` the ninth shape compiled for one code object
    fails hard (``recompile_limit``, 8). With one code object per key, any number of shapes can be decoded
    in a process, and a session made again for a known key (after :data:`MAX_SESSIONS` pushed it out)
    finds its compiled graph.
    """
    fn = _COMPILED.pop(key, None)
    if fn is None:
        code = Session.step.__code__.replace()  # a copy: dynamo's cache and recompile count are its own
        step = FunctionType(code, Session.step.__globals__, f"step_{len(_COMPILED)}", None, None)
        fn = torch.compile(step, backend=COMPILE_BACKEND, fullgraph=True, dynamic=False)
        while len(_COMPILED) >= MAX_COMPILED:
            _COMPILED.popitem(last=False)
    _COMPILED[key] = fn
    return fn


_SESSIONS: OrderedDict[tuple, Session] = OrderedDict()
_COMPILED: OrderedDict[tuple, Callable[[Session], None]] = OrderedDict()


def release_sessions() -> None:
    """Forget every kept session (captured steps and their buffers) and compiled step."""
    _SESSIONS.clear()
    _COMPILED.clear()


def _memory(model) -> tuple:
    """Where a model's weights live: a captured step reads them there, so a model whose weights moved (``.to``,
    a loaded state dict that replaced them) needs a new capture. In-place updates (training) are seen."""
    if not isinstance(model, torch.nn.Module):
        return (id(model),)
    return (id(model), *((t.data_ptr(), t.dtype, t.shape) for t in (*model.parameters(), *model.buffers())))


def _trim(keep: tuple) -> None:
    """Forget the least recently used sessions but ``keep`` while their buffers hold more than
    :data:`MAX_SESSION_BYTES` in all."""
    total = sum(session.buffer_bytes() for session in _SESSIONS.values())
    for key in list(_SESSIONS):
        if total <= MAX_SESSION_BYTES:
            break
        if key != keep:
            total -= _SESSIONS.pop(key).buffer_bytes()


def _session(
    rule,
    method: DecodeMethod,
    policy: PreTrainedModel,
    scorer: Scorer | None,
    stop: Stopping,
    batch: Prompts,
    path: str,
) -> tuple[tuple, Session]:
    rows, prompt = batch.ids.shape
    weights = (_memory(policy), None if scorer is None else _memory(scorer.static_key))
    shape = (
        type(rule),
        astuple(method),
        rows,
        bucketed(prompt + stop.max_new_tokens),
        bucketed(prompt + stop.max_new_tokens + method.k - 1),
        tuple(stop.eos_ids.tolist()),
        tuple(stop.suppress_ids.tolist()),
        str(batch.ids.device),
    )
    key = (path, weights, shape)
    session = _SESSIONS.pop(key, None)
    if session is None:
        while len(_SESSIONS) >= MAX_SESSIONS:
            _SESSIONS.popitem(last=False)
        compiled = None
        if path == "compiled":
            compiled = compiled_step((id(policy), None if scorer is None else id(scorer.static_key), shape))
        session = Session(rule, method, policy, scorer, stop, rows, prompt, path, compiled)
    _SESSIONS[key] = session
    return key, session


@torch.no_grad()
def static_decode_tokens(
    rule,
    method: DecodeMethod,
    policy: PreTrainedModel,
    batch: Prompts,
    scorer: Scorer | None,
    stop: Stopping,
    path: str,
) -> tuple[list[list[int]], list[str], float]:
    """The token loop of ``rule`` on the static path (``path``: static, graphs or compiled).

    Returns each row's token ids (up to and including its first EOS), its stop reason (``eos`` or
    ``length``) and the seconds this call spent compiling and capturing (a shape's first call; 0 later).
    """
    rows = len(batch.texts)
    if bucketed_rows(rows) != rows:
        batch = _padded(batch, bucketed_rows(rows))
    key, session = _session(rule, method, policy, scorer, stop, batch, path)
    try:
        session.start(batch, stop)
        _trim(keep=key)
        steps = session.decode(stop.max_new_tokens, sync_every=16 if batch.ids.is_cuda else 1)
    except BaseException:
        _SESSIONS.pop(key, None)  # a failed compile or capture leaves nothing half made behind
        raise
    if session.capture_seconds:
        log.info(
            "decoding step of %s for %d rows and %d columns (path %s): warm-up, compiling and capturing took %.1f s",
            method.name,
            session.seeds.shape[0],
            session.slots,
            path,
            session.capture_seconds,
        )
    if session.scorer is not None:
        raise_if_not_finite(method.name, session.scorer.bad[:rows])
    picked = session.tokens[:rows, :steps].tolist()
    eos = set(stop.eos_ids.tolist())
    token_ids, reasons = [], []
    for row in picked:
        end = next((i for i, t in enumerate(row) if t in eos), None)
        token_ids.append(row if end is None else row[: end + 1])
        reasons.append("length" if end is None else "eos")
    return token_ids, reasons, session.capture_seconds
